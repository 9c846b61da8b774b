/**
 * Name resolution as the server does it (namespace.c): which schema an unqualified relation or function
 * name means under a search_path. pg_catalog is searched first unless the path places it; the session's
 * temporary schema first of all for relations (never for functions); `$user` is the current role's own
 * schema; schemas that do not exist or that the gateway's role may not use are skipped; the first
 * schema holding a relation of that name wins (shadowing), and a function name means every function of
 * that name taking that many arguments in any schema of the path (overloads: the server picks by argument
 * types, which the gateway does not know, so all of them count).
 *
 * Conservative where it cannot be sure: a search_path whose value is unknown searches every schema, and
 * several possible paths (or users) resolve to the union of what each gives. Pure: the catalog is an
 * interface.
 */
import { type FunctionRef, formatName, type RelationRef, splitIdentifierList } from './names.js';
import { UNKNOWN_VALUE } from './settings.js';

export const TEMP_SCHEMA = 'pg_temp';
export const CATALOG_SCHEMA = 'pg_catalog';

/** A function as the catalog describes it (pg_proc). */
export interface CatalogFunction {
  oid: number;
  schema: string;
  name: string;
  /** pronargs, pronargdefaults, provariadic <> 0 */
  nargs: number;
  defaults: number;
  variadic: boolean;
  /** provolatile: i immutable, s stable, v volatile. */
  volatility: 'i' | 's' | 'v';
  /** pg_language.lanname: internal, c, sql, plpgsql ... */
  language: string;
  /** prokind: f function, p procedure, a aggregate, w window. */
  kind: string;
  /** prosrc of functions outside the system schemas (SQL text for LANGUAGE sql). */
  source?: string;
  /** A BEGIN ATOMIC body (pg_get_function_sqlbody). */
  sqlBody?: string;
  /** The function's own search_path (SET clause), already split; undefined when it has none. */
  searchPath?: string[];
  /** An aggregate's support functions (transition, final ...), by oid. */
  support?: number[];
  /** proargtypes (`25 23`): a function with the same types earlier in the path hides this one entirely. */
  argTypes?: string;
  /** pg_get_function_arguments / pg_get_function_result, to rebuild a PL/pgSQL function for its parser. */
  arguments?: string;
  result?: string;
}

/** What name resolution needs from the catalog. */
export interface NameLookup {
  /** The schema exists and the gateway's role may use it (USAGE). */
  usableSchema(name: string): boolean;
  /** Every schema the gateway's role may use (where an unknown path may point). */
  usableSchemas(): string[];
  /** A relation (any kind) of that name exists in that schema. */
  hasRelation(schema: string, name: string): boolean;
  /** Every schema holding a relation of that name (an unknown path searches them all). */
  relationSchemas(name: string): string[];
  /** Some session holds a temporary relation of that name. */
  hasTempRelation(name: string): boolean;
  functions(schema: string, name: string): readonly CatalogFunction[];
  /** Every function of that name in any schema. */
  functionsNamed(name: string): readonly CatalogFunction[];
  functionByOid(oid: number): CatalogFunction | undefined;
}

/** What the session's settings say at this statement. */
export interface PathContext {
  /** Possible search_path values (setting strings; UNKNOWN_VALUE when it could be anything). */
  searchPaths: readonly string[];
  /** Possible current roles (for `$user`); UNKNOWN_VALUE when it could be anyone. */
  users: readonly string[];
  /** Temporary relations this session may hold (created through the gateway). */
  tempRelations: ReadonlySet<string>;
  /** The session ran code the gateway cannot see into: it may hold temporary relations of any name. */
  opaqueTemp?: boolean;
}

export const DEFAULT_SEARCH_PATH = '"$user", public';

interface Path {
  /** Schemas in search order, implicit ones included; `unknown`: any schema. */
  schemas: string[] | 'unknown';
  /** Where an unqualified CREATE lands (the first explicit schema), or undefined when none is usable. */
  creation?: string;
  /** pg_temp placed explicitly (and where). */
  tempExplicit: boolean;
}

/** Computed paths per catalog snapshot (a snapshot never changes), and for no catalog at all. */
const pathCache = new WeakMap<NameLookup, Map<string, Path>>();
const textualPaths = new Map<string, Path>();

/** The search orders a statement may see, one per possible (search_path, user) pair. */
export function effectivePaths(ctx: PathContext, lookup: NameLookup | undefined): Path[] {
  let cache = lookup ? pathCache.get(lookup) : textualPaths;
  if (!cache) {
    cache = new Map();
    pathCache.set(lookup!, cache);
  }
  const paths = new Set<Path>();
  for (const value of ctx.searchPaths.length > 0 ? ctx.searchPaths : [UNKNOWN_VALUE]) {
    for (const user of ctx.users.length > 0 ? ctx.users : [UNKNOWN_VALUE]) {
      const key = `${value}\u0001${user}`;
      let path = cache.get(key);
      if (!path) {
        if (cache.size > 1000) cache.clear();
        path = effectivePath(value, user, lookup);
        cache.set(key, path);
      }
      paths.add(path);
    }
  }
  return [...paths];
}

function effectivePath(value: string, user: string, lookup: NameLookup | undefined): Path {
  const entries = value === UNKNOWN_VALUE ? undefined : splitIdentifierList(value);
  if (!entries) return { schemas: 'unknown', tempExplicit: false };
  const schemas: string[] = [];
  let tempExplicit = false;
  let creation: string | undefined;
  for (const entry of entries) {
    let schema: string;
    if (entry === '$user') {
      if (!lookup) continue; // without a catalog, `$user` is taken not to exist (the common case)
      if (user === UNKNOWN_VALUE) return { schemas: 'unknown', tempExplicit: false };
      schema = user;
    } else schema = entry;
    if (schema === TEMP_SCHEMA) {
      tempExplicit = true;
    } else if (lookup && !lookup.usableSchema(schema)) {
      continue; // the server skips schemas that do not exist or that the role may not use
    }
    if (schemas.includes(schema)) continue;
    creation ??= schema;
    schemas.push(schema);
  }
  if (!schemas.includes(CATALOG_SCHEMA)) schemas.unshift(CATALOG_SCHEMA);
  return { schemas, creation, tempExplicit };
}

/** The names a relation reference may mean (`schema.name`, canonical), most often exactly one. */
export function resolveRelation(
  ref: RelationRef,
  paths: readonly Path[],
  ctx: PathContext,
  lookup: NameLookup | undefined,
): string[] {
  if (ref.temp) return [formatName([TEMP_SCHEMA, ref.name])];
  if (ref.schema !== undefined) return [formatName([ref.schema, ref.name])];
  const out = new Set<string>();
  for (const path of paths) for (const schema of relationSchemas(ref, path, ctx, lookup)) out.add(schema);
  return [...out].map((schema) => formatName([schema, ref.name]));
}

function relationSchemas(
  ref: RelationRef,
  path: Path,
  ctx: PathContext,
  lookup: NameLookup | undefined,
): string[] {
  if (ref.creates) {
    // CREATE without a schema: the first schema of the path (pg_temp there makes it temporary).
    if (path.schemas === 'unknown') return lookup ? lookup.usableSchemas() : ['public'];
    // No usable schema: the server refuses to create anything ("no schema has been selected").
    return [path.creation ?? CATALOG_SCHEMA];
  }
  // A temporary relation of this name shadows everything unless pg_temp is placed later in the path.
  const maybeTemp =
    ctx.tempRelations.has(ref.name) || (ctx.opaqueTemp === true && !!lookup?.hasTempRelation(ref.name));
  const temp = maybeTemp ? [TEMP_SCHEMA] : [];
  if (path.schemas === 'unknown') {
    if (!lookup) return [...temp, 'public'];
    const anywhere = lookup.relationSchemas(ref.name);
    return [...temp, ...(anywhere.length > 0 ? anywhere : lookup.usableSchemas())];
  }
  if (!lookup) return [...temp, path.creation ?? 'public'];
  const order = path.tempExplicit ? path.schemas : [TEMP_SCHEMA, ...path.schemas];
  const found: string[] = [];
  for (const schema of order) {
    if (schema === TEMP_SCHEMA) {
      if (maybeTemp) found.push(TEMP_SCHEMA); // may or may not be there: keep looking too
      continue;
    }
    if (lookup.hasRelation(schema, ref.name)) {
      found.push(schema);
      return found;
    }
  }
  // Not found: the server will fail (unless it was created since the catalog snapshot). Named after the
  // schema a CREATE would use, as the closest guess.
  found.push(path.creation ?? CATALOG_SCHEMA);
  return found;
}

/** True when resolving this reference found nothing in the snapshot (a reason to reload it). */
export function relationMissing(
  ref: RelationRef,
  paths: readonly Path[],
  lookup: NameLookup,
  ctx: PathContext,
): boolean {
  if (ref.creates || ref.temp) return false;
  if (ref.schema === undefined && ctx.tempRelations.has(ref.name)) return false; // the session's own
  if (ref.schema !== undefined)
    return ref.schema !== TEMP_SCHEMA && !lookup.hasRelation(ref.schema, ref.name);
  return paths.every((path) => {
    const schemas = path.schemas === 'unknown' ? lookup.relationSchemas(ref.name) : path.schemas;
    return !schemas.some((s) => s !== TEMP_SCHEMA && lookup.hasRelation(s, ref.name));
  });
}

export interface ResolvedFunction {
  /** Canonical `schema.name` of each candidate (the name as written when there is no catalog). */
  names: string[];
  candidates: CatalogFunction[];
}

/** The functions a call may reach: every function of that name and arity the path can see. */
export function resolveFunction(
  ref: FunctionRef,
  paths: readonly Path[],
  lookup: NameLookup | undefined,
): ResolvedFunction {
  if (!lookup) {
    return {
      names: [formatName(ref.schema === undefined ? [ref.name] : [ref.schema, ref.name])],
      candidates: [],
    };
  }
  const candidates = new Map<number, CatalogFunction>();
  const add = (list: readonly CatalogFunction[]) => {
    for (const f of list) if (acceptsArgs(f, ref.args)) candidates.set(f.oid, f);
  };
  if (ref.schema !== undefined) add(lookup.functions(ref.schema, ref.name));
  else {
    for (const path of paths) {
      if (path.schemas === 'unknown') add(lookup.functionsNamed(ref.name));
      // Functions are never looked up in the temporary schema unless it is named.
      else
        for (const schema of path.schemas)
          if (schema !== TEMP_SCHEMA) add(lookup.functions(schema, ref.name));
    }
  }
  const list = [...candidates.values()];
  const names = [...new Set(list.map((f) => formatName([f.schema, f.name])))];
  if (names.length === 0)
    names.push(formatName(ref.schema === undefined ? [ref.name] : [ref.schema, ref.name]));
  return { names, candidates: list };
}

/** Could this function take `args` arguments (defaults and VARIADIC considered)? -1 = unknown count. */
export function acceptsArgs(f: CatalogFunction, args: number): boolean {
  if (args < 0) return true;
  const min = f.nargs - f.defaults - (f.variadic ? 1 : 0);
  return args >= min && (f.variadic || args <= f.nargs);
}
