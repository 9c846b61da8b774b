/**
 * Lineage from the real parser's tree: for every output column of a statement, the source columns
 * (`schema.table.column`) its values derive from, and whether they are the source's values unchanged
 * or transformed. Also what the statement reads anywhere, what it uses in predicates (WHERE, JOIN,
 * GROUP BY, ORDER BY, DISTINCT, set operations, window clauses — the inference guard), and what it
 * sends into storage or side effects (INSERT/UPDATE values, CREATE TABLE AS, set_config, pg_notify ...).
 *
 * Conservative by construction: anything it cannot follow (an unknown relation, a user-defined
 * function, a node it does not know) is `unknown`, never clear. Pure: the catalog is passed in.
 */
import { isDynamicSqlFunction, isSideChannelFunction, isWritingFunction } from '../sql/side-channels.js';
import { isStatementTextFunction } from '../sql/statement-text-sources.js';
import { dottedName, isObject, unwrapNode } from '../sql/walk.js';
import { type Catalog, type CatalogColumn, type CatalogRelation, isSystemSchema } from './catalog.js';
import { type CopyFormat, copyFormatOf } from './copy.js';

export interface Lineage {
  /** Source columns, `schema.table.column`, lower-case. */
  sources: ReadonlySet<string>;
  /** The value went through an expression: a mask that needs the clear shape cannot apply. */
  transformed: boolean;
  /** Derived from something lineage cannot follow. */
  unknown: boolean;
  /** The column's type when it is a source column unchanged (from the catalog). */
  typeOid?: number;
}

/** One output column; `open` stands for zero or more columns (a `*` over something of unknown shape). */
export interface Output {
  name: string;
  lineage: Lineage;
  open?: boolean;
}

export interface StatementLineage {
  /** What comes back as rows: 'none' (no rows or no table data), 'known' (outputs), 'unknown'. */
  rows: 'none' | 'clear' | 'known' | 'unknown';
  outputs: Output[];
  reads: Set<string>;
  predicates: Set<string>;
  /**
   * Columns a value of the statement's own is computed from (`upper(ssn)`, `1 / (ascii(ssn) - 49)`, a
   * CASE over it): whether computing it fails tells something about the column, as a predicate would.
   */
  computed: Set<string>;
  sinks: Set<string>;
  unknownRead: boolean;
  unknownPredicate: boolean;
  unknownSink: boolean;
  /** COPY ... TO: the data it copies out. */
  copyOut?: Lineage;
  /** COPY ... TO: each column it copies out, in order, and its format (null: options not understood). */
  copyColumns?: Output[];
  copyFormat?: CopyFormat | null;
  /**
   * Cursor and prepared-statement bookkeeping the session must do. Names as PostgreSQL holds them: the
   * parser folds unquoted ones, and a quoted "S1" is another object than s1.
   */
  declareCursor?: { name: string; hold: boolean };
  fetchCursor?: string;
  closeCursor?: string | null;
  prepare?: string;
  execute?: string;
  /** EXECUTE's parameters, merged: the prepared statement may return any of them (`select $1`). */
  executeParams?: Lineage;
  /** CREATE TABLE ... AS EXECUTE: what the prepared statement returns goes into a table (a sink). */
  executeInto?: boolean;
  /** A statement that runs code the gateway cannot see (DO, CALL): its effects cannot be followed. */
  opaque?: string;
  /** EXPLAIN of the statement this lineage describes (`outputs` are the statement's, not the plan's). */
  explain?: boolean;
}

type Ctx = 'value' | 'predicate' | 'sink';
type Body = Record<string, unknown>;

const EMPTY: Lineage = { sources: new Set(), transformed: false, unknown: false };
const UNKNOWN: Lineage = { sources: new Set(), transformed: true, unknown: true };

export function mergeLineage(list: readonly Lineage[], transformed: boolean): Lineage {
  if (list.length === 1 && !transformed) return list[0]!;
  const sources = new Set<string>();
  let t = transformed;
  let unknown = false;
  for (const l of list) {
    for (const s of l.sources) sources.add(s);
    t ||= l.transformed;
    unknown ||= l.unknown;
  }
  return { sources, transformed: t, unknown };
}

interface Col {
  name: string;
  lineage: Lineage;
}

interface Item {
  /** The name it is referenced by (alias, or the relation's name); undefined for an unnamed join. */
  name?: string;
  /** `schema.name` of a relation, for `schema.table.column` references. */
  qualified?: string;
  columns: Col[];
  /** The shape is unknown: any column name resolves to this lineage and `*` gives an open output. */
  open?: Lineage;
}

interface Scope {
  items: Item[];
  /** `*` expansion, in order. */
  star: Output[];
  parent?: Scope;
  ctes: Map<string, Output[]>;
}

const MAX_DEPTH = 64;

/** Functions whose value says nothing about their arguments' values beyond what predicates do. */
const COUNTING = new Set(['count']);
/**
 * Side effects that keep a value where a later statement can read it in clear: a setting, a
 * notification, a WAL message, an advisory lock's key (pg_locks shows it to every session), the
 * random generator's seed (random() then follows from it).
 */
const SINK_FUNCTIONS = new Set([
  'set_config',
  'pg_notify',
  'pg_logical_emit_message',
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_advisory_xact_lock',
  'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_try_advisory_xact_lock',
  'pg_try_advisory_xact_lock_shared',
  'setseed',
]);

class Analyzer {
  reads = new Set<string>();
  predicates = new Set<string>();
  computed = new Set<string>();
  sinks = new Set<string>();
  unknownRead = false;
  unknownPredicate = false;
  unknownSink = false;
  private depth = 0;

  constructor(
    private readonly catalog: Catalog,
    private readonly views: ViewCache,
  ) {}

  note(l: Lineage, ctx: Ctx): void {
    for (const s of l.sources) this.reads.add(s);
    if (l.unknown) this.unknownRead = true;
    if (ctx === 'predicate') {
      for (const s of l.sources) this.predicates.add(s);
      if (l.unknown) this.unknownPredicate = true;
    } else if (ctx === 'sink') {
      for (const s of l.sources) this.sinks.add(s);
      if (l.unknown) this.unknownSink = true;
    }
  }

  /** Code the gateway cannot see into runs here: its value, and what it reads, are unknown. */
  private opaque(ctx: Ctx): Lineage {
    this.note(UNKNOWN, ctx);
    return UNKNOWN;
  }

  /** Values of unknown type meet here and an implicit cast running user code may convert them. */
  private coerced(l: Lineage, ctx: Ctx): Lineage {
    return this.catalog.implicitUserCasts ? mergeLineage([l, this.opaque(ctx)], true) : l;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) throw new Error('statement too deeply nested to follow');
  }
  private leave(): void {
    this.depth--;
  }

  // ---- queries ---------------------------------------------------------------------------------

  /** A query node (`{SelectStmt: ...}` or a bare SelectStmt body) → its outputs. */
  query(node: unknown, parent: Scope | undefined, ctx: Ctx, ctes?: Map<string, Output[]>): Output[] {
    const unwrapped = unwrapNode(node);
    if (unwrapped) {
      const [type, body] = unwrapped;
      if (type === 'SelectStmt') return this.select(body, parent, ctx, ctes);
      if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') {
        return this.dml(type, body, parent, ctx, ctes);
      }
      // Anything else used as a query: follow what it references, shape unknown.
      this.generic(body, parent ?? emptyScope(ctes), ctx);
      return [{ name: '?column?', lineage: UNKNOWN, open: true }];
    }
    if (isObject(node)) return this.select(node, parent, ctx, ctes);
    return [{ name: '?column?', lineage: UNKNOWN, open: true }];
  }

  private withScope(
    body: Body,
    parent: Scope | undefined,
    inherited?: Map<string, Output[]>,
  ): Map<string, Output[]> {
    const ctes = new Map(inherited ?? parent?.ctes ?? []);
    const withClause = body.withClause;
    if (!isObject(withClause)) return ctes;
    for (const c of asArray(withClause.ctes)) {
      const cte = unwrapNode(c);
      if (cte?.[0] !== 'CommonTableExpr') continue;
      const def = cte[1];
      const name = String(def.ctename ?? '');
      const aliases = asArray(def.aliascolnames).map(stringOf);
      // CYCLE compares its mark with `<>` and the row with `=`, looked up by name: no operator written.
      if (isObject(def.cycle_clause) && (this.userOperator(NOT_EQUALS) || this.userOperator(EQUALS)))
        this.opaque('predicate');
      let outputs: Output[];
      if (withClause.recursive) {
        // The recursive term reads itself: iterate from "unknown shape, nothing read" to a fixed point.
        ctes.set(name, [{ name: '?column?', lineage: EMPTY, open: true }]);
        outputs = [];
        for (let i = 0; i < 4; i++) {
          outputs = renameOutputs(this.query(def.ctequery, parent, 'value', ctes), aliases);
          const merged = outputs.map((o) => ({ ...o, lineage: { ...o.lineage, transformed: true } }));
          ctes.set(name, merged);
        }
        outputs = ctes.get(name)!;
      } else {
        outputs = renameOutputs(this.query(def.ctequery, parent, 'value', ctes), aliases);
        ctes.set(name, outputs);
      }
    }
    return ctes;
  }

  private select(
    body: Body,
    parent: Scope | undefined,
    ctx: Ctx,
    inheritedCtes?: Map<string, Output[]>,
  ): Output[] {
    this.enter();
    try {
      const ctes = this.withScope(body, parent, inheritedCtes);
      const op = String(body.op ?? 'SETOP_NONE');
      if (op !== 'SETOP_NONE') {
        const left = this.query(body.larg, parent, ctx, ctes);
        const right = this.query(body.rarg, parent, ctx, ctes);
        const outputs = combineSetOp(left, right).map((o) => ({
          ...o,
          lineage: this.coerced(o.lineage, ctx),
        }));
        // INTERSECT, EXCEPT and UNION without ALL compare values: a predicate over every column.
        if (!body.all || op !== 'SETOP_UNION') for (const o of outputs) this.note(o.lineage, 'predicate');
        const scope: Scope = { items: [], star: [], parent, ctes };
        this.orderBy(body.sortClause, scope, outputs);
        this.generic(body.limitCount, scope, 'predicate');
        this.generic(body.limitOffset, scope, 'predicate');
        return outputs;
      }
      const scope: Scope = { items: [], star: [], parent, ctes };
      if (Array.isArray(body.valuesLists)) {
        const rows = body.valuesLists.map((list) => {
          const items = unwrapNode(list)?.[1].items;
          return asArray(items).map((e) => this.expr(e, scope, ctx));
        });
        const width = Math.max(0, ...rows.map((r) => r.length));
        return Array.from({ length: width }, (_, i) => {
          const lineage = mergeLineage(
            rows.map((r) => r[i] ?? EMPTY),
            false,
          );
          return { name: `column${i + 1}`, lineage: rows.length > 1 ? this.coerced(lineage, ctx) : lineage };
        });
      }
      for (const from of asArray(body.fromClause)) this.fromItem(from, scope, true);
      const outputs: Output[] = [];
      for (const target of asArray(body.targetList)) {
        const res = unwrapNode(target);
        if (res?.[0] !== 'ResTarget') {
          outputs.push({ name: '?column?', lineage: this.expr(target, scope, ctx) });
          continue;
        }
        const val = res[1].val;
        const star = starRef(val);
        if (star) {
          for (const o of this.expandStar(star, scope)) {
            this.note(o.lineage, ctx);
            outputs.push(o);
          }
          continue;
        }
        const lineage = this.expr(val, scope, ctx);
        outputs.push({ name: typeof res[1].name === 'string' ? res[1].name : figureName(val), lineage });
      }
      this.generic(body.whereClause, scope, 'predicate');
      this.generic(body.havingClause, scope, 'predicate');
      this.groupOrOrder(body.groupClause, scope, outputs);
      this.orderBy(body.sortClause, scope, outputs);
      const distinct = asArray(body.distinctClause);
      if (distinct.length > 0) {
        if (distinct.every((d) => !isObject(d) || Object.keys(d).length === 0)) {
          for (const o of outputs) this.note(o.lineage, 'predicate');
        } else this.groupOrOrder(distinct, scope, outputs);
      }
      this.generic(body.windowClause, scope, 'predicate');
      this.generic(body.limitCount, scope, 'predicate');
      this.generic(body.limitOffset, scope, 'predicate');
      if (isObject(body.intoClause)) for (const o of outputs) this.note(o.lineage, 'sink');
      return outputs;
    } finally {
      this.leave();
    }
  }

  /** ORDER BY / GROUP BY / DISTINCT ON: an output number or name refers to the output's lineage. */
  private groupOrOrder(list: unknown, scope: Scope, outputs: Output[]): void {
    for (const entry of asArray(list)) {
      const unwrapped = unwrapNode(entry);
      const node = unwrapped?.[0] === 'SortBy' ? unwrapped[1].node : entry;
      const position = integerConst(node);
      if (position !== undefined && outputs[position - 1]) {
        this.note(outputs[position - 1]!.lineage, 'predicate');
        continue;
      }
      const name = simpleColumnName(node);
      const byName = name !== undefined ? outputs.filter((o) => o.name === name) : [];
      if (byName.length > 0) for (const o of byName) this.note(o.lineage, 'predicate');
      else this.generic(node, scope, 'predicate');
      if (unwrapped?.[0] === 'SortBy' && this.userOperator(unwrapped[1].useOp)) this.opaque('predicate');
    }
  }

  private orderBy(list: unknown, scope: Scope, outputs: Output[]): void {
    this.groupOrOrder(list, scope, outputs);
  }

  private dml(
    type: string,
    body: Body,
    parent: Scope | undefined,
    ctx: Ctx,
    inheritedCtes?: Map<string, Output[]>,
  ): Output[] {
    this.enter();
    try {
      const ctes = this.withScope(body, parent, inheritedCtes);
      const scope: Scope = { items: [], star: [], parent, ctes };
      const relation = isObject(body.relation) ? body.relation : undefined;
      const target = relation ? this.rangeVar(relation, scope) : undefined;
      // Values assigned to columns may go through an assignment cast.
      if (type !== 'DeleteStmt') this.coerced(EMPTY, 'sink');
      if (type === 'InsertStmt') {
        // The inserted values go into storage.
        if (body.selectStmt) this.query(body.selectStmt, undefined, 'sink', ctes);
        if (target) this.addItem(scope, target, true);
        const conflict = isObject(body.onConflictClause) ? body.onConflictClause : undefined;
        if (conflict) {
          const excluded: Item = { name: 'excluded', columns: target?.columns ?? [], open: target?.open };
          scope.items.push(excluded);
          this.targets(conflict.targetList, scope, 'sink');
          this.generic(conflict.whereClause, scope, 'predicate');
        }
      } else {
        if (target) this.addItem(scope, target, true);
        if (type === 'UpdateStmt') {
          for (const from of asArray(body.fromClause)) this.fromItem(from, scope, true);
          this.targets(body.targetList, scope, 'sink');
        } else if (type === 'DeleteStmt') {
          for (const from of asArray(body.usingClause)) this.fromItem(from, scope, true);
        } else {
          if (body.sourceRelation) this.fromItem(body.sourceRelation, scope, true);
          this.generic(body.joinCondition, scope, 'predicate');
          for (const w of asArray(body.mergeWhenClauses)) {
            const clause = unwrapNode(w)?.[1];
            if (!clause) continue;
            this.generic(clause.condition, scope, 'predicate');
            this.targets(clause.targetList, scope, 'sink');
            this.generic(clause.values, scope, 'sink');
          }
        }
      }
      this.generic(body.whereClause, scope, 'predicate');
      const outputs: Output[] = [];
      for (const t of asArray(body.returningList)) {
        const res = unwrapNode(t);
        const val = res?.[0] === 'ResTarget' ? res[1].val : t;
        const star = starRef(val);
        if (star) {
          for (const o of this.expandStar(star, scope)) {
            this.note(o.lineage, ctx);
            outputs.push(o);
          }
          continue;
        }
        outputs.push({
          name: typeof res?.[1].name === 'string' ? res[1].name : figureName(val),
          lineage: this.expr(val, scope, ctx),
        });
      }
      return outputs;
    } finally {
      this.leave();
    }
  }

  /** UPDATE SET / ON CONFLICT SET / MERGE: the values assigned. */
  private targets(list: unknown, scope: Scope, ctx: Ctx): void {
    for (const t of asArray(list)) {
      const res = unwrapNode(t);
      this.generic(res?.[0] === 'ResTarget' ? res[1].val : t, scope, ctx);
    }
  }

  // ---- FROM ------------------------------------------------------------------------------------

  private addItem(scope: Scope, item: Item, visibleToStar: boolean): void {
    scope.items.push(item);
    if (!visibleToStar) return;
    if (item.open) scope.star.push({ name: item.name ?? '?column?', lineage: item.open, open: true });
    for (const c of item.columns) scope.star.push({ name: c.name, lineage: c.lineage });
  }

  /** One FROM item: adds its named items to the scope; returns its columns in `*` order. */
  fromItem(node: unknown, scope: Scope, top: boolean): Output[] {
    const unwrapped = unwrapNode(node);
    if (!unwrapped) return [];
    const [type, body] = unwrapped;
    const aliasName = isObject(body.alias) ? String(body.alias.aliasname) : undefined;
    const colnames = isObject(body.alias) ? asArray(body.alias.colnames).map(stringOf) : [];
    switch (type) {
      case 'RangeVar': {
        const item = this.rangeVar(body, scope);
        this.addItem(scope, item, top);
        return starOf(item);
      }
      case 'RangeSubselect': {
        const outputs = renameOutputs(this.query(body.subquery, scope, 'value'), colnames);
        const item = itemOf(aliasName, outputs);
        this.addItem(scope, item, top);
        return starOf(item);
      }
      case 'RangeFunction': {
        // ROWS FROM (f(...), g(...)) [WITH ORDINALITY]: shape unknown unless column names are given.
        const lineages: Lineage[] = [];
        for (const f of asArray(body.functions)) {
          const items = asArray(unwrapNode(f)?.[1].items);
          lineages.push(this.expr(items[0], scope, 'value'));
          this.generic(items[1], scope, 'value');
        }
        // A column definition list converts the record's fields to its types.
        lineages.push(this.generic(body.coldeflist, scope, 'value'));
        const lineage = mergeLineage(lineages, true);
        const coldefs = asArray(body.coldeflist).map((c) => String(unwrapNode(c)?.[1].colname ?? '?column?'));
        const names = colnames.length > 0 ? colnames : coldefs;
        const item: Item =
          names.length > 0 && !body.ordinality
            ? { name: aliasName, columns: names.map((n) => ({ name: n, lineage })) }
            : { name: aliasName ?? functionAlias(body), columns: [], open: lineage };
        this.addItem(scope, item, top);
        return starOf(item);
      }
      case 'JoinExpr': {
        const inner: Scope = { items: [], star: [], parent: scope.parent, ctes: scope.ctes };
        // Earlier FROM items are visible to LATERAL references inside the join.
        inner.items.push(...scope.items);
        const before = inner.items.length;
        const left = this.fromItem(body.larg, inner, false);
        const right = this.fromItem(body.rarg, inner, false);
        const joined = inner.items.slice(before);
        const using = asArray(body.usingClause).map(stringOf);
        const natural = body.isNatural === true;
        const common = natural
          ? left.filter((l) => !l.open && right.some((r) => !r.open && r.name === l.name)).map((l) => l.name)
          : using;
        const merged: Output[] = common.map((name) => ({
          name,
          lineage: this.coerced(
            mergeLineage(
              [...left, ...right].filter((c) => c.name === name || c.open).map((c) => c.lineage),
              false,
            ),
            'predicate',
          ),
        }));
        const star = [
          ...merged,
          ...left.filter((c) => !common.includes(c.name)),
          ...right.filter((c) => !common.includes(c.name)),
        ];
        // USING and NATURAL compare the common columns with `=`, looked up by name: no operator written.
        if ((natural || using.length > 0) && this.userOperator(EQUALS)) this.opaque('predicate');
        const joinScope: Scope = { ...inner, items: [...inner.items, { columns: merged }] };
        this.generic(body.quals, joinScope, 'predicate');
        for (const c of merged) this.note(c.lineage, 'predicate');
        if (aliasName) {
          const item = itemOf(aliasName, renameOutputs(star, colnames));
          this.addItem(scope, item, top);
          return starOf(item);
        }
        for (const item of joined) scope.items.push(item);
        if (merged.length > 0) scope.items.push({ columns: merged });
        if (top) for (const o of star) scope.star.push(o);
        return star;
      }
      case 'RangeTableSample':
        this.generic(body.args, scope, 'predicate');
        this.generic(body.repeatable, scope, 'predicate');
        return this.fromItem(body.relation, scope, top);
      default: {
        // RangeTableFunc (XMLTABLE), JSON_TABLE ...: follow the arguments, shape unknown.
        const lineage = this.generic(body, scope, 'value');
        const item: Item = { name: aliasName, columns: [], open: mergeLineage([lineage, UNKNOWN], true) };
        this.addItem(scope, item, top);
        return starOf(item);
      }
    }
  }

  private rangeVar(body: Body, scope: Scope): Item {
    // Names in the statement are PostgreSQL's (unquoted ones folded by the parser): "C" is not c. The
    // catalog is searched ignoring case, which can only add candidates.
    const relname = String(body.relname ?? '');
    const schema = typeof body.schemaname === 'string' ? body.schemaname : undefined;
    const alias = isObject(body.alias) ? String(body.alias.aliasname) : undefined;
    const colnames = isObject(body.alias) ? asArray(body.alias.colnames).map(stringOf) : [];
    if (!schema) {
      const cte = findCte(scope, relname);
      if (cte) return itemOf(alias ?? relname, renameOutputs(cte, colnames));
    }
    const candidates = schema
      ? [this.catalog.relation(`${schema}.${relname}`.toLowerCase())].filter((r): r is CatalogRelation => !!r)
      : this.catalog.candidates(relname);
    if (candidates.length === 0) {
      // Not in the catalog (a temporary table, one created since the snapshot): unknown.
      return {
        name: alias ?? relname,
        qualified: schema ? `${schema}.${relname}` : undefined,
        columns: [],
        open: UNKNOWN,
      };
    }
    const shapes = candidates.map((r) => this.relationColumns(r));
    let columns: Col[];
    if (shapes.length === 1) columns = shapes[0]!;
    else {
      // The same name in several schemas: which one search_path picks is not known here, so a column
      // derives from every candidate's column of that name; the shapes must agree.
      const names = shapes[0]!.map((c) => c.name).join(',');
      if (!shapes.every((s) => s.map((c) => c.name).join(',') === names)) {
        return {
          name: alias ?? relname,
          columns: [],
          open: mergeLineage([...shapes.flat().map((c) => c.lineage), UNKNOWN], true),
        };
      }
      columns = shapes[0]!.map((c, i) => ({
        name: c.name,
        lineage: mergeLineage(
          shapes.map((s) => s[i]!.lineage),
          false,
        ),
      }));
    }
    const renamed = columns.map((c, i) => ({ name: colnames[i] ?? c.name, lineage: c.lineage }));
    const single = candidates.length === 1 ? candidates[0]! : undefined;
    return {
      name: alias ?? relname,
      qualified: single ? `${single.schema}.${single.name}` : undefined,
      columns: renamed,
    };
  }

  /** A relation's columns with their lineage (columnLineage); a view's expanded. */
  private relationColumns(r: CatalogRelation): Col[] {
    if (r.viewDefinition !== undefined && !isSystemSchema(r.schema)) {
      const view = this.views.get(r, this.catalog);
      for (const s of view.reads) this.reads.add(s);
      if (view.unknownRead) this.unknownRead = true;
      return view.columns;
    }
    return r.columns.map((c) => ({ name: c.name, lineage: columnLineage(this.catalog, r, c) }));
  }

  private expandStar(star: { qualifier?: string[] }, scope: Scope): Output[] {
    if (!star.qualifier) {
      return scope.star.length > 0 ? [...scope.star] : [];
    }
    const item = this.findItem(scope, star.qualifier);
    if (!item) return [{ name: '?column?', lineage: UNKNOWN, open: true }];
    return starOf(item);
  }

  private findItem(scope: Scope, qualifier: string[]): Item | undefined {
    const name = qualifier[qualifier.length - 1]!;
    const schema = qualifier.length > 1 ? qualifier[qualifier.length - 2]! : undefined;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const found = s.items.filter(
        (i) => i.name === name && (!schema || i.qualified === `${schema}.${name}`),
      );
      if (found.length > 0) return found[found.length - 1];
    }
    return undefined;
  }

  // ---- expressions -----------------------------------------------------------------------------

  private columnRef(body: Body, scope: Scope): Lineage {
    const fields = asArray(body.fields);
    const names = fields.map((f) => {
      const n = unwrapNode(f);
      return n?.[0] === 'String' ? String(n[1].sval ?? '') : '*';
    });
    if (names.includes('*')) {
      // `c.*` inside an expression (row_to_json(c.*)): the whole row.
      const qualifier = names.slice(0, -1);
      const cols =
        qualifier.length > 0
          ? (() => {
              const item = this.findItem(scope, qualifier);
              return item ? starOf(item) : [{ name: '', lineage: UNKNOWN }];
            })()
          : scope.star;
      return mergeLineage(
        cols.map((c) => c.lineage),
        true,
      );
    }
    if (names.length === 1) {
      const name = names[0]!;
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const hits: Lineage[] = [];
        for (const item of s.items) {
          const col = item.columns.find((c) => c.name === name);
          if (col) hits.push(col.lineage);
          else if (item.open) hits.push({ ...item.open, transformed: true });
        }
        const exact = s.items.some((i) => i.columns.some((c) => c.name === name));
        if (exact || hits.length > 0) return mergeLineage(hits, false);
        // A whole-row reference: `SELECT c FROM customers c`.
        const item = s.items.find((i) => i.name === name);
        if (item)
          return mergeLineage(
            starOf(item).map((c) => c.lineage),
            true,
          );
      }
      return UNKNOWN;
    }
    const column = names[names.length - 1]!;
    const item = this.findItem(scope, names.slice(0, -1));
    if (!item) return UNKNOWN;
    const col = item.columns.find((c) => c.name === column);
    if (col) return col.lineage;
    return item.open ? { ...item.open, transformed: true } : UNKNOWN;
  }

  /** Lineage of an expression; every column it references is noted in `ctx`. */
  expr(node: unknown, scope: Scope, ctx: Ctx): Lineage {
    const lineage = this.exprOf(node, scope, ctx);
    const unwrapped = unwrapNode(node);
    // A column passed on as it is (a whole row too) computes nothing; anything else that derives from
    // one does, and its error (a division by zero, a failed cast) comes only for some values.
    if (ctx === 'value' && lineage.transformed && unwrapped && unwrapped[0] !== 'ColumnRef')
      for (const s of lineage.sources) this.computed.add(s);
    if (!unwrapped || !this.runsUserCode(unwrapped[0], unwrapped[1])) return lineage;
    return mergeLineage([lineage, this.opaque(ctx)], true);
  }

  /**
   * Does this node run code the gateway cannot see, beyond what its children do: an operator whose
   * function is the user's (by name, any schema: `###`, `OPERATOR(s.###)`, `= ANY`, `IN`, `LIKE`,
   * `IS DISTINCT FROM`), a parameter of a type whose I/O is the user's, or, when an implicit cast runs
   * user code, any node that combines values. Casts (`::t`, `CAST`, `t 'literal'`) are checked where
   * a `typeName` field is (generic).
   */
  private runsUserCode(type: string, body: Body): boolean {
    if (this.catalog.implicitUserCasts && !LEAVES.has(type)) return true;
    if (type === 'A_Expr') return operatorNames(body).some((names) => this.userOperator(names));
    if (type === 'SubLink') return this.userOperator(subLinkOperator(body));
    // `CASE x WHEN y` compares x = y: the parser looks `=` up by name, none is written.
    if (type === 'CaseExpr') return body.arg !== undefined && body.arg !== null && this.userOperator(EQUALS);
    if (type === 'ParamRef') return this.catalog.hasOpaqueTypes;
    return false;
  }

  /** An operator name list (`[public, ###]`): the bare name decides, whatever the schema. */
  private userOperator(names: unknown): boolean {
    const list = asArray(names).map(rawString);
    const name = list[list.length - 1];
    return name !== undefined && this.catalog.operatorKind(name) !== 'builtin';
  }

  /** A cast's target type (a `typeName` field): converting to it may run user code. */
  private userType(typeName: Body): boolean {
    const names = asArray(typeName.names).map(rawString);
    return this.catalog.typeKind(names) !== 'builtin';
  }

  private exprOf(node: unknown, scope: Scope, ctx: Ctx): Lineage {
    const unwrapped = unwrapNode(node);
    if (!unwrapped) return Array.isArray(node) || isObject(node) ? this.generic(node, scope, ctx) : EMPTY;
    const [type, body] = unwrapped;
    switch (type) {
      case 'ColumnRef': {
        const l = this.columnRef(body, scope);
        this.note(l, ctx);
        return l;
      }
      case 'A_Const':
      case 'ParamRef':
      case 'SQLValueFunction':
        return EMPTY;
      case 'FuncCall':
        return this.funcCall(body, scope, ctx);
      case 'SubLink': {
        const kind = String(body.subLinkType ?? '');
        const inner =
          kind === 'EXISTS_SUBLINK' ||
          kind === 'ANY_SUBLINK' ||
          kind === 'ALL_SUBLINK' ||
          kind === 'ROWCOMPARE_SUBLINK'
            ? 'predicate'
            : ctx;
        const outputs = this.query(body.subselect, scope, inner);
        const test = this.expr(body.testexpr, scope, inner);
        // A scalar subquery returns its one output's value as it is; EXISTS / IN / ARRAY(...) compute a
        // new value from what they compared or collected.
        if (kind === 'EXPR_SUBLINK' && outputs.length === 1 && !outputs[0]!.open) return outputs[0]!.lineage;
        return mergeLineage([test, ...outputs.map((o) => o.lineage)], true);
      }
      case 'SelectStmt':
        return mergeLineage(
          this.query(node, scope, ctx).map((o) => o.lineage),
          true,
        );
      case 'A_Expr':
      case 'BoolExpr':
      case 'NullTest':
      case 'BooleanTest':
        // A comparison's result reveals something about its operands: derived from them.
        return this.generic(body, scope, ctx, true);
      default:
        return this.generic(body, scope, ctx, true);
    }
  }

  private funcCall(body: Body, scope: Scope, ctx: Ctx): Lineage {
    const name = dottedName(body.funcname);
    const bare = name.slice(name.lastIndexOf('.') + 1);
    const kind = this.catalog.functionKind(name);
    const sink =
      SINK_FUNCTIONS.has(bare) ||
      isWritingFunction(name) ||
      isSideChannelFunction(name) ||
      isDynamicSqlFunction(name);
    const argCtx: Ctx = sink
      ? 'sink'
      : COUNTING.has(bare) && kind === 'builtin' && ctx === 'value'
        ? 'predicate'
        : ctx;
    const args = asArray(body.args).map((a) => this.expr(a, scope, argCtx));
    // Aggregate ORDER BY / FILTER and window PARTITION/ORDER shape which values come out.
    const extras = [
      this.generic(body.agg_order, scope, ctx === 'value' ? 'predicate' : ctx),
      this.generic(body.agg_filter, scope, ctx === 'value' ? 'predicate' : ctx),
      this.generic(body.over, scope, ctx === 'value' ? 'predicate' : ctx),
    ];
    if (body.agg_star) {
      // count(*) — nothing of any value.
    }
    if (kind !== 'builtin' || isDynamicSqlFunction(name) || isStatementTextFunction(bare)) {
      // A function the gateway cannot see into (user-defined, running SQL text, or returning other
      // sessions' statement text among its columns, as a view over pg_stat_get_activity would): unknown.
      return mergeLineage([...args, ...extras, this.opaque(ctx)], true);
    }
    if (COUNTING.has(bare)) return EMPTY;
    return mergeLineage([...args, ...extras], true);
  }

  /** Walk any node: the lineage of everything in it (`transformed` when asked), noting references. */
  generic(value: unknown, scope: Scope, ctx: Ctx, transformed = true): Lineage {
    const found: Lineage[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) {
        for (const x of v) walk(x);
        return;
      }
      if (!isObject(v)) return;
      const node = unwrapNode(v);
      if (node) {
        found.push(this.expr(v, scope, ctx));
        return;
      }
      fields(v);
    };
    const fields = (v: Body): void => {
      // `x::t`, CAST(x AS t), `t 'literal'`, a column definition list, XMLSERIALIZE, JSON ... RETURNING.
      if (isObject(v.typeName) && this.userType(v.typeName)) found.push(this.opaque(ctx));
      for (const [key, child] of Object.entries(v)) {
        if (key === 'location') continue;
        walk(child);
      }
    };
    if (isObject(value) && !unwrapNode(value)) fields(value);
    else walk(value);
    return found.length === 0 ? EMPTY : mergeLineage(found, transformed);
  }

  result(): Pick<
    StatementLineage,
    'reads' | 'predicates' | 'computed' | 'sinks' | 'unknownRead' | 'unknownPredicate' | 'unknownSink'
  > {
    return {
      reads: this.reads,
      predicates: this.predicates,
      computed: this.computed,
      sinks: this.sinks,
      unknownRead: this.unknownRead,
      unknownPredicate: this.unknownPredicate,
      unknownSink: this.unknownSink,
    };
  }
}

// ---- views -------------------------------------------------------------------------------------

interface ViewShape {
  columns: Col[];
  reads: Set<string>;
  unknownRead: boolean;
}

/** Expanded views, per catalog snapshot. */
export class ViewCache {
  private version = -1;
  private readonly shapes = new Map<number, ViewShape>();
  private readonly expanding = new Set<number>();

  constructor(private readonly parse: (sql: string) => unknown) {}

  get(view: CatalogRelation, catalog: Catalog): ViewShape {
    if (catalog.version !== this.version) {
      this.shapes.clear();
      this.version = catalog.version;
    }
    const cached = this.shapes.get(view.oid);
    if (cached) return cached;
    let shape: ViewShape;
    if (this.expanding.has(view.oid) || this.expanding.size > 32) {
      shape = {
        columns: view.columns.map((c) => ({ name: c.name, lineage: UNKNOWN })),
        reads: new Set(),
        unknownRead: true,
      };
    } else {
      this.expanding.add(view.oid);
      try {
        shape = this.expand(view, catalog);
      } catch {
        shape = {
          columns: view.columns.map((c) => ({ name: c.name, lineage: UNKNOWN })),
          reads: new Set(),
          unknownRead: true,
        };
      } finally {
        this.expanding.delete(view.oid);
      }
    }
    this.shapes.set(view.oid, shape);
    return shape;
  }

  private expand(view: CatalogRelation, catalog: Catalog): ViewShape {
    const tree = this.parse(view.viewDefinition ?? '') as { stmts?: { stmt?: unknown }[] };
    const stmt = tree.stmts?.[0]?.stmt;
    // The view's own WHERE/JOIN were written by whoever created it, not by this user: only the
    // outputs and what it reads matter.
    const analyzer = new Analyzer(catalog, this);
    const outputs = analyzer.query(stmt, undefined, 'value');
    const open = outputs.some((o) => o.open);
    const columns = view.columns.map((c, i) => {
      const out = open || outputs.length !== view.columns.length ? undefined : outputs[i];
      const lineage = out ? out.lineage : mergeLineage([...outputs.map((o) => o.lineage), UNKNOWN], true);
      return {
        name: c.name,
        lineage: out && !out.lineage.transformed ? { ...lineage, typeOid: c.typeOid } : lineage,
      };
    });
    return { columns, reads: analyzer.reads, unknownRead: analyzer.unknownRead };
  }
}

// ---- statements --------------------------------------------------------------------------------

/** Analyse one statement node (`{ SelectStmt: ... }`). Never throws: what it cannot follow is unknown. */
export function analyzeStatement(node: unknown, catalog: Catalog, views: ViewCache): StatementLineage {
  const a = new Analyzer(catalog, views);
  const base = (rows: StatementLineage['rows'], outputs: Output[] = []): StatementLineage => ({
    rows,
    outputs,
    ...a.result(),
  });
  try {
    const unwrapped = unwrapNode(node);
    if (!unwrapped) return { ...base('unknown'), unknownRead: true };
    const [type, body] = unwrapped;
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt': {
        const outputs = a.query(node, undefined, 'value');
        const rows = type === 'SelectStmt' || asArray(body.returningList).length > 0 ? 'known' : 'none';
        return base(rows, outputs);
      }
      case 'DeclareCursorStmt': {
        const outputs = a.query(body.query, undefined, 'value');
        const hold = (Number(body.options ?? 0) & 0x20) !== 0;
        return {
          ...base('none', outputs),
          declareCursor: { name: String(body.portalname ?? ''), hold },
        };
      }
      case 'FetchStmt':
        if (body.ismove) return base('none');
        return { ...base('unknown'), fetchCursor: String(body.portalname ?? '') };
      case 'ClosePortalStmt':
        return {
          ...base('none'),
          closeCursor: typeof body.portalname === 'string' ? body.portalname : null,
        };
      case 'PrepareStmt': {
        const inner = analyzeStatement(body.query, catalog, views);
        return { ...inner, rows: 'none', prepare: String(body.name ?? '') };
      }
      case 'ExecuteStmt': {
        const params = asArray(body.params).map((p) => a.expr(p, emptyScope(), 'value'));
        return {
          ...base('unknown'),
          execute: String(body.name ?? ''),
          executeParams: params.length > 0 ? mergeLineage(params, false) : undefined,
        };
      }
      case 'CopyStmt': {
        if (body.is_from) {
          a.generic(body.whereClause, emptyScope(), 'predicate');
          return base('none');
        }
        let outputs: Output[];
        if (body.query) outputs = a.query(body.query, undefined, 'value');
        else {
          const scope = emptyScope();
          outputs = isObject(body.relation) ? a.fromItem({ RangeVar: body.relation }, scope, true) : [];
          const attlist = asArray(body.attlist).map(stringOf);
          // COPY of a table without a column list leaves its generated columns out (PostgreSQL does).
          if (attlist.length === 0 && isObject(body.relation)) {
            const generated = generatedColumnNames(catalog, body.relation);
            if (generated.size > 0) outputs = outputs.filter((o) => o.open || !generated.has(o.name));
          }
          // COPY t (b, a) writes b then a: the list's order, not the table's.
          if (attlist.length > 0) {
            const all = outputs;
            const open = all.filter((o) => o.open);
            outputs = attlist.map(
              (name) =>
                all.find((o) => !o.open && o.name === name) ?? {
                  name,
                  lineage: mergeLineage([...open.map((o) => o.lineage), UNKNOWN], true),
                },
            );
          }
          for (const o of outputs) a.note(o.lineage, 'value');
        }
        const copyOut = mergeLineage(
          outputs.map((o) => o.lineage),
          false,
        );
        // COPY to a file or program keeps the values outside the gateway's reach: a sink.
        if (body.filename !== undefined || body.is_program) a.note(copyOut, 'sink');
        return {
          ...base('none'),
          copyOut,
          copyColumns: outputs,
          copyFormat: copyFormatOf(body.options) ?? null,
        };
      }
      case 'CreateTableAsStmt': {
        const execute = unwrapNode(body.query);
        if (execute?.[0] === 'ExecuteStmt') {
          for (const p of asArray(execute[1].params)) a.expr(p, emptyScope(), 'sink');
          return { ...base('none'), execute: String(execute[1].name ?? ''), executeInto: true };
        }
        const outputs = a.query(body.query, undefined, 'sink');
        void outputs;
        return base('none');
      }
      case 'ExplainStmt': {
        // The plan is clear only for a statement whose lineage is (masking decides, from `explain`):
        // it prints constants the planner folded, a mislabelled IMMUTABLE function's result among them.
        // EXPLAIN ANALYZE runs the statement (its sinks count).
        const inner = analyzeStatement(body.query, catalog, views);
        return {
          ...inner,
          rows: 'clear',
          explain: true,
          declareCursor: undefined,
          copyOut: undefined,
          copyColumns: undefined,
          copyFormat: undefined,
        };
      }
      case 'ViewStmt':
        // A view's lineage is followed when it is read; creating it copies nothing.
        a.query(body.query, undefined, 'value');
        return base('none');
      case 'DoStmt':
        return {
          ...base('unknown'),
          unknownRead: true,
          unknownSink: true,
          opaque: 'a DO block runs code the gateway cannot follow',
        };
      case 'CallStmt':
        a.generic(body.funccall, emptyScope(), 'sink');
        return {
          ...base('unknown'),
          unknownRead: true,
          unknownSink: true,
          opaque: 'CALL runs a procedure the gateway cannot follow',
        };
      case 'VariableShowStmt':
        return base('clear');
      case 'TransactionStmt':
      case 'VariableSetStmt':
      case 'DiscardStmt':
      case 'DeallocateStmt':
      case 'ListenStmt':
      case 'UnlistenStmt':
      case 'LockStmt':
        return base('none');
      default:
        // Other statements (DDL, maintenance) return no rows; if rows come anyway they are masked whole.
        a.generic(body, emptyScope(), 'value');
        return base('none');
    }
  } catch {
    return { ...base('unknown'), unknownRead: true, unknownPredicate: true, unknownSink: true };
  }
}

// ---- helpers -----------------------------------------------------------------------------------

function emptyScope(ctes?: Map<string, Output[]>): Scope {
  return { items: [], star: [], ctes: ctes ?? new Map() };
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Nodes that never convert a value's type (an implicit cast cannot fire on them alone). */
const LEAVES = new Set([
  'ColumnRef',
  'A_Const',
  'ParamRef',
  'SQLValueFunction',
  'String',
  'Integer',
  'Float',
  'Boolean',
  'BitString',
  'A_Star',
]);

/** The operators an A_Expr runs: BETWEEN's are the comparisons, named by the syntax, not the node. */
function operatorNames(body: Body): unknown[][] {
  const kind = String(body.kind ?? '');
  if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) {
    return ['<', '<=', '>', '>='].map((sval) => [{ String: { sval } }]);
  }
  return [asArray(body.name)];
}

/** `=` and `<>` as operator name lists: what CASE, JOIN USING / NATURAL and CYCLE run without spelling it. */
const EQUALS: unknown[] = [{ String: { sval: '=' } }];
const NOT_EQUALS: unknown[] = [{ String: { sval: '<>' } }];

/** The operator a SubLink compares with: `x IN (select ...)` has none written and runs `=`. */
function subLinkOperator(body: Body): unknown[] {
  const names = asArray(body.operName);
  if (names.length > 0 || body.subLinkType !== 'ANY_SUBLINK') return names;
  return [{ String: { sval: '=' } }];
}

/** A String node's text as written (operator and type names keep their case). */
function rawString(node: unknown): string {
  const n = unwrapNode(node);
  return n?.[0] === 'String' ? String(n[1].sval ?? '') : '';
}

function stringOf(node: unknown): string {
  const n = unwrapNode(node);
  return n?.[0] === 'String' ? String(n[1].sval ?? '') : '';
}

function itemOf(name: string | undefined, outputs: Output[]): Item {
  const open = outputs.filter((o) => o.open);
  return {
    name,
    columns: outputs.filter((o) => !o.open).map((o) => ({ name: o.name, lineage: o.lineage })),
    open:
      open.length > 0
        ? mergeLineage(
            open.map((o) => o.lineage),
            true,
          )
        : undefined,
  };
}

function starOf(item: Item): Output[] {
  const cols: Output[] = item.columns.map((c) => ({ name: c.name, lineage: c.lineage }));
  if (item.open) cols.push({ name: item.name ?? '?column?', lineage: item.open, open: true });
  return cols;
}

function renameOutputs(outputs: Output[], names: string[]): Output[] {
  if (names.length === 0) return outputs;
  return outputs.map((o, i) => (names[i] && !o.open ? { ...o, name: names[i]! } : o));
}

function findCte(scope: Scope, name: string): Output[] | undefined {
  return scope.ctes.get(name);
}

function combineSetOp(left: Output[], right: Output[]): Output[] {
  if (left.some((o) => o.open) || right.some((o) => o.open) || left.length !== right.length) {
    const all = mergeLineage(
      [...left, ...right].map((o) => o.lineage),
      false,
    );
    return [
      {
        name: left[0]?.name ?? '?column?',
        lineage: { ...all, unknown: all.unknown || left.length !== right.length },
        open: true,
      },
    ];
  }
  return left.map((l, i) => ({ name: l.name, lineage: mergeLineage([l.lineage, right[i]!.lineage], false) }));
}

function starRef(val: unknown): { qualifier?: string[] } | undefined {
  const n = unwrapNode(val);
  if (n?.[0] !== 'ColumnRef') return undefined;
  const fields = asArray(n[1].fields);
  const last = unwrapNode(fields[fields.length - 1]);
  if (last?.[0] !== 'A_Star') return undefined;
  if (fields.length === 1) return {};
  return { qualifier: fields.slice(0, -1).map(stringOf) };
}

function figureName(val: unknown): string {
  const n = unwrapNode(val);
  if (!n) return '?column?';
  const [type, body] = n;
  if (type === 'ColumnRef') {
    const fields = asArray(body.fields);
    return stringOf(fields[fields.length - 1]) || '?column?';
  }
  if (type === 'FuncCall') {
    const name = dottedName(body.funcname);
    return name.slice(name.lastIndexOf('.') + 1);
  }
  if (type === 'TypeCast') return figureName(body.arg);
  return '?column?';
}

function functionAlias(body: Body): string | undefined {
  const first = asArray(unwrapNode(asArray(body.functions)[0])?.[1].items)[0];
  const f = unwrapNode(first);
  if (f?.[0] !== 'FuncCall') return undefined;
  const name = dottedName(f[1].funcname);
  return name.slice(name.lastIndexOf('.') + 1);
}

function integerConst(node: unknown): number | undefined {
  const n = unwrapNode(node);
  if (n?.[0] !== 'A_Const' || !isObject(n[1].ival)) return undefined;
  return Number(n[1].ival.ival ?? 0);
}

function simpleColumnName(node: unknown): string | undefined {
  const n = unwrapNode(node);
  if (n?.[0] !== 'ColumnRef') return undefined;
  const fields = asArray(n[1].fields);
  return fields.length === 1 ? stringOf(fields[0]) : undefined;
}

/**
 * The sources of a table's column: itself; the same-named column of its inheritance / partition
 * parents (transitively); the same-named column of every descendant, transitively, since a scan of the
 * relation returns their rows (`ONLY` is not told apart: conservative); and for a generated column, the
 * columns its generation expression references (every other column of the table when the expression is
 * not known), which makes it transformed: its value is computed from theirs. A column of a type whose
 * code is the user's (catalog.opaqueType), generated by an expression calling user code, or a key of an
 * index or partition key whose operator class is user code (a scan compares with it), is unknown.
 */
export function columnLineage(catalog: Catalog, r: CatalogRelation, column: CatalogColumn): Lineage {
  const name = column.name.toLowerCase();
  const sources = new Set<string>();
  for (const p of ancestors(catalog, r)) sources.add(`${p}.${name}`);
  let transformed = false;
  let unknown = false;
  const seen = new Set<string>();
  const visit = (rel: CatalogRelation, col: CatalogColumn) => {
    const key = `${rel.oid}\u0000${col.attnum}`;
    if (seen.has(key)) return;
    seen.add(key);
    // Reading, comparing or converting a value of such a type runs the user's code.
    if (catalog.opaqueType(col.typeOid) || col.generatedByUserCode || col.comparedByUserCode) unknown = true;
    const colName = col.name.toLowerCase();
    sources.add(`${rel.schema}.${rel.name}.${colName}`.toLowerCase());
    if (col.generated) {
      transformed = true;
      for (const other of generationInputs(rel, col)) visit(rel, other);
    }
    for (const child of rel.children) {
      const c = catalog.relation(child);
      const same = c?.columns.find((x) => x.name.toLowerCase() === colName);
      if (c && same) visit(c, same);
    }
  };
  visit(r, column);
  return { sources, transformed: transformed || unknown, unknown, typeOid: column.typeOid };
}

/**
 * The columns a generated column's expression references. pg_get_expr prints a column reference as its
 * name, bare or double-quoted (quotes inside doubled), never touching another identifier character: a
 * column whose name so appears anywhere in the text is counted (a string literal spelling a name counts
 * too: more masking, never less). Without the expression, every other column.
 */
function generationInputs(rel: CatalogRelation, col: CatalogColumn): CatalogColumn[] {
  const others = rel.columns.filter((c) => c !== col);
  const text = col.generationExpression;
  if (!text) return others;
  return others.filter((c) => mentions(text, c.name) || mentions(text, c.name.replace(/"/g, '""')));
}

const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

function mentions(text: string, name: string): boolean {
  if (name === '') return false;
  for (let at = text.indexOf(name); at >= 0; at = text.indexOf(name, at + 1)) {
    const before = at > 0 ? text[at - 1]! : '';
    const after = text[at + name.length] ?? '';
    if (!IDENTIFIER_CHAR.test(before) && !IDENTIFIER_CHAR.test(after)) return true;
  }
  return false;
}

/** The generated columns of the relation a COPY names (every candidate's, by name). */
function generatedColumnNames(catalog: Catalog, relation: Body): Set<string> {
  const relname = String(relation.relname ?? '').toLowerCase();
  const schema = typeof relation.schemaname === 'string' ? relation.schemaname.toLowerCase() : undefined;
  const candidates = schema
    ? [catalog.relation(`${schema}.${relname}`)].filter((r): r is CatalogRelation => !!r)
    : catalog.candidates(relname);
  const names = new Set<string>();
  for (const r of candidates) for (const c of r.columns) if (c.generated) names.add(c.name);
  return names;
}

function ancestors(catalog: Catalog, r: CatalogRelation, seen = new Set<string>()): string[] {
  for (const p of r.parents) {
    if (seen.has(p)) continue;
    seen.add(p);
    const parent = catalog.relation(p);
    if (parent) ancestors(catalog, parent, seen);
  }
  return [...seen];
}
