/**
 * Which relations and user functions can hand out other sessions' statement text without naming a
 * source (sql/statement-text-sources.ts): views and materialized views built on a source, at any depth
 * (pg_depend of their rewrite rules, and their definitions parsed: pg_depend has no rows for pinned
 * built-ins such as pg_stat_get_activity), and user functions
 * whose body reads a source or such a view (read with the real parsers: SQL, BEGIN ATOMIC, PL/pgSQL).
 * A DBA may create either directly on the database; the gate then analyses a statement naming one as
 * if it named the source. Names are compared bare (any schema), which can only find too many. Pure.
 */
import { bodyStatements } from '../sql/functions.js';
import { decodeFunctionRef, decodeRelationRef } from '../sql/names.js';
import { parseSql } from '../sql/parser.js';
import type { CatalogFunction } from '../sql/search-path.js';
import { STATEMENT_TEXT_FUNCTIONS, STATEMENT_TEXT_RELATIONS } from '../sql/statement-text-sources.js';
import { classifyStatement } from '../sql/syntax.js';

export interface StatementTextReaders {
  /** Bare lower-case names of relations that hold or pass on the text (the sources included). */
  relations: ReadonlySet<string>;
  /** Bare lower-case names of functions that return it (the built-in ones and user functions reading it). */
  functions: ReadonlySet<string>;
}

export interface StatementTextInput {
  /** Relation oid → bare name (every relation the catalog read). */
  relationNames: ReadonlyMap<number, string>;
  /** One row per rewrite-rule dependency: the view's oid, 'r' or 'f', the referenced relation's or function's oid. */
  viewDependencies: readonly (string | null)[][];
  functions: readonly CatalogFunction[];
  /** View name (bare) → its definition: pg_depend records nothing on pinned built-ins (pg_stat_get_activity). */
  viewDefinitions: readonly (readonly [string, string])[];
}

interface BodyRefs {
  name: string;
  relations: string[];
  functions: string[];
}

export function statementTextReaders(input: StatementTextInput): StatementTextReaders {
  const relations = new Set(STATEMENT_TEXT_RELATIONS);
  const functions = new Set(STATEMENT_TEXT_FUNCTIONS);
  const functionNames = new Map(input.functions.map((f) => [f.oid, f.name.toLowerCase()]));
  const views = viewReferences(input, functionNames);
  const bodies = input.functions.flatMap((f) => bodyRefs(f) ?? []);
  // A fixed point: each pass may taint a view or a function another one reads.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [view, refs] of views) {
      if (relations.has(view) || !refs.some((r) => relations.has(r) || functions.has(r))) continue;
      relations.add(view);
      changed = true;
    }
    for (const body of bodies) {
      if (functions.has(body.name)) continue;
      if (!body.relations.some((r) => relations.has(r)) && !body.functions.some((f) => functions.has(f)))
        continue;
      functions.add(body.name);
      changed = true;
    }
  }
  return { relations, functions };
}

/** Each view's bare name → the bare names of the relations and functions its rules reference. */
function viewReferences(input: StatementTextInput, functionNames: ReadonlyMap<number, string>) {
  const views = new Map<string, string[]>();
  for (const [view, kind, ref] of input.viewDependencies) {
    const name = input.relationNames.get(Number(view));
    const target = kind === 'f' ? functionNames.get(Number(ref)) : input.relationNames.get(Number(ref));
    if (name === undefined || target === undefined) continue;
    const list = views.get(name);
    if (list) list.push(target);
    else views.set(name, [target]);
  }
  for (const [name, definition] of input.viewDefinitions) {
    const refs = namesIn(parsedOrEmpty(definition));
    views.set(name, [...(views.get(name) ?? []), ...refs.relations, ...refs.functions]);
  }
  return views;
}

function parsedOrEmpty(sql: string): unknown[] {
  try {
    return (parseSql(sql).stmts ?? []).map((s) => s.stmt);
  } catch {
    return [];
  }
}

/** The bare names of the relations and functions some statements reference. */
function namesIn(nodes: readonly unknown[]): { relations: string[]; functions: string[] } {
  const refs = { relations: [] as string[], functions: [] as string[] };
  for (const node of nodes) {
    const stmt = classifyStatement(node, '');
    for (const r of stmt.relations) refs.relations.push(decodeRelationRef(r).name.toLowerCase());
    for (const fn of stmt.functions) refs.functions.push(decodeFunctionRef(fn).name.toLowerCase());
  }
  return refs;
}

/** What a user function's body names (undefined for built-ins and bodies that cannot be read). */
function bodyRefs(f: CatalogFunction): BodyRefs | undefined {
  if (f.schema === 'pg_catalog' || f.schema === 'information_schema') return undefined;
  const body = bodyStatements(f);
  if (!body) return undefined;
  return { name: f.name.toLowerCase(), ...namesIn(body.nodes) };
}
