/**
 * The database's catalog as the gateway needs it. For name resolution (policy): every schema and
 * whether the gateway's role may use it, every relation name (temporary ones included), and every
 * function with what classification needs (arity, volatility, language, the body of functions outside
 * the system schemas, their own search_path). For masking lineage: every relation's columns (name,
 * number, type, whether it is generated and from what), view definitions (views are expanded through
 * them), inheritance and partition parents and children (a parent's column carries every descendant's
 * column of that name as a source: a scan of the parent returns the children's rows).
 *
 * One snapshot per upstream connection, loaded over a connection of its own (the gateway's
 * credentials, the same connection config as the sessions), cached, and invalidated when a statement
 * through the gateway changes the schema (DDL) and after `ttlMs` (changes made around the gateway).
 * The module that parses the snapshot (`buildCatalog`) is pure; `createCatalogSource` caches what the
 * fetch it is given returns (transport/catalog-query.ts runs the query over a socket).
 */

import { OWN_QUERY_MARK } from '../contracts/own-query.js';
import { formatName, parseName, splitIdentifierList } from '../sql/names.js';
import { loadPlpgsqlParser } from '../sql/plpgsql.js';
import type { CatalogFunction, NameLookup } from '../sql/search-path.js';

export interface CatalogColumn {
  name: string;
  attnum: number;
  typeOid: number;
  /**
   * A generated column (pg_attribute.attgenerated 's' stored, 'v' virtual): its value is computed from
   * other columns of its row, and COPY of the table leaves it out.
   */
  generated?: boolean;
  /** The generation expression as pg_get_expr prints it (names it references are spelled as written). */
  generationExpression?: string;
}

export interface CatalogRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, v view, m materialized view, f foreign table. */
  kind: string;
  columns: CatalogColumn[];
  /** pg_get_viewdef for views and materialized views outside the system schemas. */
  viewDefinition?: string;
  /** Direct inheritance / partition parents, as `schema.name`. */
  parents: string[];
  /** Direct inheritance children and partitions, as `schema.name`: a scan of this relation returns their rows. */
  children: string[];
}

export type FunctionKind = 'builtin' | 'user' | 'unknown';

export interface Catalog extends NameLookup {
  /** `schema.name` in canonical form (`public."Secrets"`); a plain lower-case string also finds it case-insensitively. */
  relation(qualified: string): CatalogRelation | undefined;
  /** Every relation of that name in any schema (an unqualified reference). */
  candidates(name: string): CatalogRelation[];
  byOid(oid: number): CatalogRelation | undefined;
  /** A function by its name as written (`lower`, `pg_catalog.lower`, `app.f`). */
  functionKind(name: string): FunctionKind;
  /** Increments on every load: caches keyed by it never outlive the schema they describe. */
  readonly version: number;
}

export interface CatalogRows {
  /** oid, schema, relname, relkind, attnum, attname, atttypid, viewdef[, attgenerated, generation expression] */
  relations: (string | null)[][];
  /** child oid, parent oid */
  inherits: (string | null)[][];
  /** proname, builtin ('t'/'f') */
  functions: (string | null)[][];
  /** nspname, usable ('t'/'f'): every schema and whether the gateway's role has USAGE on it. */
  namespaces?: (string | null)[][];
  /** nspname, relname: every relation of any kind (temporary schemas included, TOAST not). */
  relationNames?: (string | null)[][];
  /** One row per function: see PROCS_SQL for the columns. */
  procs?: (string | null)[][];
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/** Every function, with the body and settings of those outside the system schemas. */
const PROCS_SQL = `SELECT p.oid, n.nspname, p.proname, p.pronargs, p.pronargdefaults, (p.provariadic <> 0)::text,
     p.provolatile::text, l.lanname, p.prokind::text,
     CASE WHEN NOT s.sys THEN p.prosrc END,
     CASE WHEN NOT s.sys AND p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) END,
     CASE WHEN NOT s.sys THEN array_to_string(p.proconfig, E'\\n') END,
     CASE WHEN NOT s.sys AND l.lanname = 'plpgsql' THEN pg_get_function_arguments(p.oid) END,
     CASE WHEN NOT s.sys AND l.lanname = 'plpgsql' AND p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
     CASE WHEN NOT s.sys AND p.prokind = 'a' THEN (SELECT array_to_string(array_remove(ARRAY[a.aggtransfn,
       a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn,
       a.aggmfinalfn]::oid[], 0::oid), ',') FROM pg_aggregate a WHERE a.aggfnoid = p.oid) END,
     p.proargtypes::text
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
   CROSS JOIN LATERAL (SELECT n.nspname IN ('pg_catalog', 'information_schema') AS sys) s`;

export const CATALOG_SQL = [
  // Views print with every name qualified (but pg_catalog's), whatever the role's default search_path.
  `${OWN_QUERY_MARK}SET search_path = ''`,
  `SELECT c.oid, n.nspname, c.relname, c.relkind::text, a.attnum, a.attname, a.atttypid,
     CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND coalesce(a.attnum, 1) = 1
          THEN pg_get_viewdef(c.oid) END,
     a.attgenerated::text,
     CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname !~ '^pg_(toast|temp)'
   ORDER BY c.oid, a.attnum`,
  'SELECT inhrelid, inhparent FROM pg_inherits',
  `SELECT p.proname, bool_and(n.nspname IN ('pg_catalog', 'information_schema'))::text
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace GROUP BY p.proname`,
  "SELECT n.nspname, has_schema_privilege(n.oid, 'USAGE')::text FROM pg_namespace n",
  `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname !~ '^pg_toast'`,
  PROCS_SQL,
].join(';\n');

let versions = 0;

/** Build the lookup structure from the catalog query's rows. Pure. */
export function buildCatalog(rows: CatalogRows): Catalog {
  const byOid = new Map<number, CatalogRelation>();
  for (const [
    oid,
    schema,
    name,
    kind,
    attnum,
    attname,
    typeOid,
    viewdef,
    generated,
    expression,
  ] of rows.relations) {
    const id = Number(oid);
    let relation = byOid.get(id);
    if (!relation) {
      relation = {
        oid: id,
        schema: String(schema),
        name: String(name),
        kind: String(kind),
        columns: [],
        parents: [],
        children: [],
      };
      byOid.set(id, relation);
    }
    if (attnum !== null && attname !== null) {
      const column: CatalogColumn = { name: attname, attnum: Number(attnum), typeOid: Number(typeOid) };
      if (generated) {
        column.generated = true;
        if (expression) column.generationExpression = expression;
      }
      relation.columns.push(column);
    }
    if (viewdef) relation.viewDefinition = viewdef;
  }
  for (const [child, parent] of rows.inherits) {
    const c = byOid.get(Number(child));
    const p = byOid.get(Number(parent));
    if (c && p) {
      c.parents.push(`${p.schema}.${p.name}`.toLowerCase());
      p.children.push(`${c.schema}.${c.name}`.toLowerCase());
    }
  }
  const byName = new Map<string, CatalogRelation>();
  const byExact = new Map<string, CatalogRelation>();
  const byBare = new Map<string, CatalogRelation[]>();
  for (const r of byOid.values()) {
    byName.set(`${r.schema}.${r.name}`.toLowerCase(), r);
    byExact.set(formatName([r.schema, r.name]), r);
    const bare = r.name.toLowerCase();
    const list = byBare.get(bare);
    if (list) list.push(r);
    else byBare.set(bare, [r]);
  }
  const functions = new Map<string, boolean>();
  for (const [name, builtin] of rows.functions) {
    if (name !== null) functions.set(name.toLowerCase(), builtin === 't' || builtin === 'true');
  }
  const version = ++versions;
  return {
    version,
    ...nameLookup(rows),
    relation(q) {
      const parts = parseName(q);
      if (parts.length !== 2) return byName.get(q.toLowerCase());
      return byExact.get(formatName(parts)) ?? byName.get(`${parts[0]}.${parts[1]}`.toLowerCase());
    },
    candidates: (name) => byBare.get(name.toLowerCase()) ?? [],
    byOid: (oid) => byOid.get(oid),
    functionKind(name) {
      const parts = name.toLowerCase().split('.');
      const bare = parts[parts.length - 1]!;
      const schema = parts.length > 1 ? parts[parts.length - 2]! : undefined;
      const builtin = functions.get(bare);
      if (builtin === undefined) return schema && !SYSTEM_SCHEMAS.has(schema) ? 'user' : 'unknown';
      if (schema) return SYSTEM_SCHEMAS.has(schema) ? 'builtin' : 'user';
      // Unqualified: built in only when no other schema defines the same name (search_path could pick it).
      return builtin ? 'builtin' : 'user';
    },
  };
}

/** Schemas of other sessions' temporary objects: never on anyone's search path but their own. */
const TEMP_SCHEMA = /^pg_(toast_)?temp_\d+$/;

/** Name resolution's view of the snapshot (search-path.ts). */
function nameLookup(rows: CatalogRows): NameLookup {
  const schemas = new Map<string, boolean>();
  const relationSchemas = new Map<string, string[]>();
  const tempRelations = new Set<string>();
  const relationKeys = new Set<string>();
  const addRelation = (schema: string, name: string) => {
    if (TEMP_SCHEMA.test(schema)) {
      tempRelations.add(name);
      return;
    }
    const key = `${schema}\u0000${name}`;
    if (relationKeys.has(key)) return;
    relationKeys.add(key);
    const list = relationSchemas.get(name);
    if (list) list.push(schema);
    else relationSchemas.set(name, [schema]);
  };
  for (const [schema, name] of rows.relationNames ?? rows.relations.map((r) => [r[1]!, r[2]!])) {
    if (schema !== null && name !== null) addRelation(schema, name);
  }
  for (const [schema, usable] of rows.namespaces ?? []) {
    if (schema !== null) schemas.set(schema, usable === 't' || usable === 'true');
  }
  if (!rows.namespaces)
    for (const list of relationSchemas.values()) for (const s of list) schemas.set(s, true);
  const functionsBySchema = new Map<string, CatalogFunction[]>();
  const functionsByName = new Map<string, CatalogFunction[]>();
  const functionsByOid = new Map<number, CatalogFunction>();
  for (const row of rows.procs ?? []) {
    const f = functionOf(row);
    if (!f) continue;
    functionsByOid.set(f.oid, f);
    push(functionsBySchema, `${f.schema}\u0000${f.name}`, f);
    push(functionsByName, f.name, f);
  }
  const usable = [...schemas].filter(([name, ok]) => ok && !TEMP_SCHEMA.test(name)).map(([name]) => name);
  return {
    usableSchema: (name) => schemas.get(name) === true,
    usableSchemas: () => usable,
    hasRelation: (schema, name) => relationKeys.has(`${schema}\u0000${name}`),
    relationSchemas: (name) => relationSchemas.get(name) ?? [],
    hasTempRelation: (name) => tempRelations.has(name),
    functions: (schema, name) => functionsBySchema.get(`${schema}\u0000${name}`) ?? [],
    functionsNamed: (name) => functionsByName.get(name) ?? [],
    functionByOid: (oid) => functionsByOid.get(oid),
  };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** One row of PROCS_SQL as a CatalogFunction. */
function functionOf(row: (string | null)[]): CatalogFunction | undefined {
  const [
    oid,
    schema,
    name,
    nargs,
    defaults,
    variadic,
    volatility,
    language,
    kind,
    source,
    sqlBody,
    config,
    args,
    result,
    support,
    argTypes,
  ] = row;
  if (oid === null || oid === undefined || schema == null || name == null) return undefined;
  const f: CatalogFunction = {
    oid: Number(oid),
    schema,
    name,
    nargs: Number(nargs ?? 0),
    defaults: Number(defaults ?? 0),
    variadic: variadic === 'true' || variadic === 't',
    volatility: volatility === 'i' || volatility === 's' ? volatility : 'v',
    language: language ?? 'internal',
    kind: kind ?? 'f',
  };
  if (source != null) f.source = source;
  if (sqlBody != null) f.sqlBody = sqlBody;
  if (args != null) f.arguments = args;
  if (result != null) f.result = result;
  if (support)
    f.support = support
      .split(',')
      .map(Number)
      .filter((n) => n > 0);
  if (argTypes != null) f.argTypes = argTypes;
  for (const line of config?.split('\n') ?? []) {
    const eq = line.indexOf('=');
    if (eq > 0 && line.slice(0, eq).toLowerCase() === 'search_path') {
      f.searchPath = splitIdentifierList(line.slice(eq + 1)) ?? [];
    }
  }
  return f;
}

export function isSystemSchema(schema: string): boolean {
  return SYSTEM_SCHEMAS.has(schema.toLowerCase());
}

// ---- loading ------------------------------------------------------------------------------------

export interface CatalogSource {
  /** The current snapshot (loads it when missing or stale). Rejects when the database cannot be read. */
  get(): Promise<Catalog>;
  /** The schema may have changed: the next get() reloads. */
  invalidate(): void;
  close(): void;
  /** The current snapshot if it is loaded and fresh, without waiting (the gate's synchronous path). */
  peek?(): Catalog | undefined;
  /** Reload unless the snapshot is younger than `ms` (a name was not in it: it may be newer). */
  refreshIfOlder?(ms: number): Promise<Catalog>;
}

export interface CatalogSourceOptions {
  ttlMs?: number;
  /** How rows are fetched: the catalog query over a connection (transport/catalog-query.ts), or a test's. */
  fetch: () => Promise<CatalogRows>;
}

export function createCatalogSource(options: CatalogSourceOptions): CatalogSource {
  const ttl = options.ttlMs ?? 60_000;
  const fetch = options.fetch;
  let current: { catalog: Catalog; at: number } | undefined;
  let loading: Promise<Catalog> | undefined;
  let generation = 0;
  return {
    get() {
      if (current && Date.now() - current.at < ttl) return Promise.resolve(current.catalog);
      if (loading) return loading;
      const started = generation;
      loading = Promise.all([fetch(), loadPlpgsqlParser()])
        .then(([rows]) => {
          const catalog = buildCatalog(rows);
          // An invalidation while loading means the snapshot may predate the change: keep it for this
          // caller only.
          if (started === generation) current = { catalog, at: Date.now() };
          return catalog;
        })
        .finally(() => {
          loading = undefined;
        });
      return loading;
    },
    invalidate() {
      generation++;
      current = undefined;
    },
    close() {
      current = undefined;
    },
    peek() {
      return current && Date.now() - current.at < ttl ? current.catalog : undefined;
    },
    refreshIfOlder(ms) {
      if (current && Date.now() - current.at >= ms) {
        generation++;
        current = undefined;
      }
      return this.get();
    },
  };
}
