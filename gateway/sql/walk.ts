/**
 * Walk a libpg-query parse tree and collect what a statement touches: relations (through CTEs,
 * subqueries, joins, DML and DDL targets) and function calls (anywhere: targets, WHERE, ORDER BY,
 * defaults, lateral, FROM functions, CALL).
 *
 * The tree is JSON. A field whose C type is the generic `Node *` holds a wrapper `{ TypeName: body }`;
 * a field typed as one specific struct (`RangeVar *relation`, `WithClause *withClause`, `FuncCall
 * *funccall` ...) holds the body alone. The walker visits every field of every object, so it needs to
 * know the bare bodies only where it acts on them: RangeVar (recognised by its `relname`), FuncCall
 * (`funccall`), WithClause (`withClause`).
 */

import { encodeRelationRef, formatName, type RelationRef } from './names.js';

export interface FunctionCall {
  /** As written, canonical (quoted where the case is kept): `pg_catalog.pg_read_file`, `now`, `"F"`. */
  name: string;
  /** Schema and name as written (exact). */
  schema?: string;
  bare: string;
  args: unknown[];
  /** How many arguments the call passes (named ones included); count(*) passes none. */
  argCount: number;
  /** The FuncCall body in the tree (to tell where the call sits). */
  node: Record<string, unknown>;
}

export interface TreeFacts {
  /** Relation references, encoded (names.ts): resolution against a search_path comes later. */
  relations: Set<string>;
  calls: FunctionCall[];
  /** A CTE whose query is INSERT/UPDATE/DELETE/MERGE. */
  dataModifyingCte: boolean;
  /** FOR UPDATE / FOR SHARE somewhere. */
  locking: boolean;
  /** SELECT ... INTO. */
  selectInto: boolean;
}

type Body = Record<string, unknown>;
/** CTE names visible at this point of the tree: an unqualified FROM reference to one is not a relation. */
type CteScope = ReadonlySet<string>;

const DML_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

export function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `{ SelectStmt: {...} }` -> ['SelectStmt', {...}]; anything else -> undefined. */
export function unwrapNode(value: unknown): [string, Body] | undefined {
  if (!isObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const type = keys[0]!;
  const first = type.charCodeAt(0);
  // Node type names start with an upper-case letter; struct fields never do.
  if (first < 65 || first > 90) return undefined;
  const body = value[type];
  return isObject(body) ? [type, body] : [type, {}];
}

export function collectFacts(tree: unknown): TreeFacts {
  const facts: TreeFacts = {
    relations: new Set(),
    calls: [],
    dataModifyingCte: false,
    locking: false,
    selectInto: false,
  };
  visit(tree, new Set(), facts);
  return facts;
}

/** The reference a RangeVar body makes (exact names: the parser already folded unquoted ones). */
export function relationRef(rangeVar: Body, creates = false): RelationRef {
  const ref: RelationRef = { name: String(rangeVar.relname) };
  if (typeof rangeVar.schemaname === 'string') ref.schema = rangeVar.schemaname;
  if (creates) ref.creates = true;
  if (creates && rangeVar.relpersistence === 't') ref.temp = true;
  return ref;
}

/** The parts of a dotted name (`[{String:{sval:'pg_catalog'}}, {String:{sval:'now'}}]`), exact. */
export function nameParts(parts: unknown): string[] {
  if (!Array.isArray(parts)) return [];
  return parts.map((p) => {
    const node = unwrapNode(p);
    return node && node[0] === 'String' ? String(node[1].sval ?? '') : '';
  });
}

/** `pg_catalog.now`; parts that keep upper case or need quoting are quoted (`"My".f`). */
export function dottedName(parts: unknown): string {
  return formatName(nameParts(parts));
}

function visit(value: unknown, scope: CteScope, facts: TreeFacts): void {
  if (Array.isArray(value)) {
    for (const item of value) visit(item, scope, facts);
    return;
  }
  if (!isObject(value)) return;
  const node = unwrapNode(value);
  if (node) visitNode(node[0], node[1], scope, facts);
  else visitFields(value, scope, facts);
}

function visitNode(type: string, body: Body, scope: CteScope, facts: TreeFacts): void {
  if (type === 'RangeVar') {
    // A FROM-clause reference: an unqualified name of a visible CTE is the CTE, not a table.
    const cteReference = body.schemaname === undefined && scope.has(String(body.relname));
    if (!cteReference) facts.relations.add(encodeRelationRef(relationRef(body)));
    return;
  }
  if (type === 'FuncCall') facts.calls.push(functionCall(body));
  visitFields(body, scope, facts, type);
}

function functionCall(body: Body): FunctionCall {
  const parts = nameParts(body.funcname);
  const args = asArray(body.args);
  const call: FunctionCall = {
    name: formatName(parts),
    bare: parts[parts.length - 1] ?? '',
    args,
    argCount: body.agg_star ? 0 : args.length,
    node: body,
  };
  if (parts.length > 1) call.schema = parts[parts.length - 2];
  return call;
}

/** Fields holding a RangeVar that the statement creates (its name lands in the creation schema). */
const CREATED_RELATION: Readonly<Record<string, string>> = {
  CreateStmt: 'relation',
  IntoClause: 'rel',
  ViewStmt: 'view',
  CreateSeqStmt: 'sequence',
  CompositeTypeStmt: 'typevar',
};

function visitFields(body: Body, outerScope: CteScope, facts: TreeFacts, type?: string): void {
  const scope = isObject(body.withClause) ? visitWithClause(body.withClause, outerScope, facts) : outerScope;
  if (Array.isArray(body.lockingClause) && body.lockingClause.length > 0) facts.locking = true;
  if (isObject(body.intoClause)) facts.selectInto = true;
  for (const [key, child] of Object.entries(body)) {
    if (key === 'withClause') continue;
    if (isObject(child) && typeof child.relname === 'string') {
      // A bare RangeVar (DML/DDL target, COPY table, INTO, REFERENCES ...): never a CTE reference.
      const creates = type !== undefined && CREATED_RELATION[type] === key;
      facts.relations.add(encodeRelationRef(relationRef(child, creates)));
    } else if (key === 'intoClause' && isObject(child)) {
      visitFields(child, scope, facts, 'IntoClause');
    } else if (key === 'into' && isObject(child)) {
      visitFields(child, scope, facts, 'IntoClause'); // CREATE TABLE AS / MATERIALIZED VIEW
    } else if (key === 'base' && isObject(child)) {
      visitFields(child, scope, facts, 'CreateStmt'); // CREATE FOREIGN TABLE
    } else if (key === 'funccall' && isObject(child)) {
      visitNode('FuncCall', child, scope, facts);
    } else {
      visit(child, scope, facts);
    }
  }
}

/**
 * A WITH clause: each CTE's query sees the CTEs before it (all of them under RECURSIVE), the statement
 * body sees them all. `WITH t AS (SELECT * FROM t)` therefore reads the real table t.
 */
function visitWithClause(withClause: Body, outerScope: CteScope, facts: TreeFacts): CteScope {
  const scope = new Set(outerScope);
  const ctes = asArray(withClause.ctes)
    .map((c) => unwrapNode(c))
    .filter((n): n is [string, Body] => n !== undefined && n[0] === 'CommonTableExpr')
    .map((n) => n[1]);
  if (withClause.recursive) for (const cte of ctes) scope.add(String(cte.ctename));
  for (const cte of ctes) {
    const query = unwrapNode(cte.ctequery);
    if (query && DML_NODES.has(query[0])) facts.dataModifyingCte = true;
    visit(cte.ctequery, new Set(scope), facts);
    scope.add(String(cte.ctename));
  }
  return scope;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
