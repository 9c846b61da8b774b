/**
 * What lineage needs from the database: every relation's columns (name, number, type), view
 * definitions (views are expanded through them), inheritance and partition parents (a partition's
 * column carries its parent's column as a source), and which function names are built in.
 *
 * One snapshot per upstream connection, loaded over a connection of its own (the gateway's
 * credentials, the same connection config as the sessions), cached, and invalidated when a statement
 * through the gateway changes the schema (DDL) and after `ttlMs` (changes made around the gateway).
 * The module that parses the snapshot (`buildCatalog`) is pure; `createCatalogSource` caches what the
 * fetch it is given returns (transport/catalog-query.ts runs the query over a socket).
 */
export interface CatalogColumn {
  name: string;
  attnum: number;
  typeOid: number;
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
}

export type FunctionKind = 'builtin' | 'user' | 'unknown';

export interface Catalog {
  /** `schema.name`, lower-case. */
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
  /** oid, schema, relname, relkind, attnum, attname, atttypid, viewdef */
  relations: (string | null)[][];
  /** child oid, parent oid */
  inherits: (string | null)[][];
  /** proname, builtin ('t'/'f') */
  functions: (string | null)[][];
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

export const CATALOG_SQL = [
  `SELECT c.oid, n.nspname, c.relname, c.relkind::text, a.attnum, a.attname, a.atttypid,
     CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND coalesce(a.attnum, 1) = 1
          THEN pg_get_viewdef(c.oid) END
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname !~ '^pg_(toast|temp)'
   ORDER BY c.oid, a.attnum`,
  'SELECT inhrelid, inhparent FROM pg_inherits',
  `SELECT p.proname, bool_and(n.nspname IN ('pg_catalog', 'information_schema'))::text
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace GROUP BY p.proname`,
].join(';\n');

let versions = 0;

/** Build the lookup structure from the catalog query's rows. Pure. */
export function buildCatalog(rows: CatalogRows): Catalog {
  const byOid = new Map<number, CatalogRelation>();
  for (const [oid, schema, name, kind, attnum, attname, typeOid, viewdef] of rows.relations) {
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
      };
      byOid.set(id, relation);
    }
    if (attnum !== null && attname !== null) {
      relation.columns.push({ name: attname, attnum: Number(attnum), typeOid: Number(typeOid) });
    }
    if (viewdef) relation.viewDefinition = viewdef;
  }
  for (const [child, parent] of rows.inherits) {
    const c = byOid.get(Number(child));
    const p = byOid.get(Number(parent));
    if (c && p) c.parents.push(`${p.schema}.${p.name}`.toLowerCase());
  }
  const byName = new Map<string, CatalogRelation>();
  const byBare = new Map<string, CatalogRelation[]>();
  for (const r of byOid.values()) {
    byName.set(`${r.schema}.${r.name}`.toLowerCase(), r);
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
    relation: (q) => byName.get(q.toLowerCase()),
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

export function isSystemSchema(schema: string): boolean {
  return SYSTEM_SCHEMAS.has(schema.toLowerCase());
}

// ---- loading ------------------------------------------------------------------------------------

export interface CatalogSource {
  /** The current snapshot (loads it when missing or stale). Rejects when the database cannot be read. */
  get(): Promise<Catalog>;
  /** The current snapshot if it is loaded and fresh, without waiting (the gate's synchronous path). */
  peek?(): Catalog | undefined;
  /** The schema may have changed: the next get() reloads. */
  invalidate(): void;
  close(): void;
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
    peek() {
      return current && Date.now() - current.at < ttl ? current.catalog : undefined;
    },
    get() {
      if (current && Date.now() - current.at < ttl) return Promise.resolve(current.catalog);
      if (loading) return loading;
      const started = generation;
      loading = fetch()
        .then((rows) => {
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
  };
}
