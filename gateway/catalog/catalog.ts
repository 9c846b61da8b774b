/**
 * The database's catalog as the gateway needs it. For name resolution (policy): every schema and
 * whether the gateway's role may use it, every relation name (temporary ones included), and every
 * function with what classification needs (arity, volatility, language, the body of functions outside
 * the system schemas, their own search_path). For masking lineage: every relation's columns (name,
 * number, type, whether it is generated and from what), view definitions (views are expanded through
 * them), inheritance and partition parents and children (a parent's column carries every descendant's
 * column of that name as a source: a scan of the parent returns the children's rows); which operator
 * names and which types can run code that is not built in (an operator's function, a cast's function,
 * a type's I/O, comparison or domain-check functions), so lineage treats them like user functions.
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
import { type StatementTextReaders, statementTextReaders } from './statement-text.js';

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
  /** The generation expression calls a function or operator that is not built in. */
  generatedByUserCode?: boolean;
  /** A key of an index or of the partition key whose operator class runs user code (scans call it). */
  comparedByUserCode?: boolean;
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
  /**
   * An operator by its name in any schema (`###` of `OPERATOR(public.###)`): 'user' when some operator of
   * that name runs a function that is not built in; 'unknown' when none has it (created since the load).
   */
  operatorKind(name: string): FunctionKind;
  /**
   * The type a cast names, as its name parts (`['mytype']`, `['pg_catalog', 'int4']`): 'user' when
   * converting to it may run code that is not built in (a cast's or the type's own functions, a
   * domain's checks); 'unknown' when no type has that name (created since the load).
   */
  typeKind(names: readonly string[]): FunctionKind;
  /** Values of this type run code that is not built in when read, compared or converted (or it is not known). */
  opaqueType(oid: number): boolean;
  /** Some type's values run user code, so a parameter (its type chosen by the client) may be one. */
  readonly hasOpaqueTypes: boolean;
  /** An implicit or assignment cast from a built-in type runs user code: any coercion may run it. */
  readonly implicitUserCasts: boolean;
  /** Increments on every load: caches keyed by it never outlive the schema they describe. */
  readonly version: number;
  /** Relations and functions that hold or pass on other sessions' statement text (computed on first use). */
  statementText(): StatementTextReaders;
}

export interface CatalogRows {
  /** oid, schema, relname, relkind, attnum, attname, atttypid, viewdef[, attgenerated, generation expression, it runs user code, a key compared by user code] */
  relations: (string | null)[][];
  /** child oid, parent oid */
  inherits: (string | null)[][];
  /** proname, builtin ('t'/'f'), builtin in the system schemas (absent: as builtin) */
  functions: (string | null)[][];
  /** nspname, usable ('t'/'f'): every schema and whether the gateway's role has USAGE on it. */
  namespaces?: (string | null)[][];
  /** nspname, relname: every relation of any kind (temporary schemas included, TOAST not). */
  relationNames?: (string | null)[][];
  /** One row per function: see PROCS_SQL for the columns. */
  procs?: (string | null)[][];
  /** oprname, builtin ('t'/'f'): every operator name; absent or empty makes every operator unknown. */
  operators?: (string | null)[][];
  /** One row per type: see TYPES_SQL for the columns. Absent or empty makes every cast unknown. */
  types?: (string | null)[][];
  /** One row: how many implicit or assignment casts from a built-in type run user code. */
  implicitCasts?: (string | null)[][];
  /** view oid, 'r' or 'f', referenced oid: what each user view's rules reference (VIEW_DEPENDENCIES_SQL). */
  viewDependencies?: (string | null)[][];
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

/*
 * Objects made after initdb have OIDs from 16384 (FirstNormalObjectId) on: a function, operator or type
 * below it is built in, whatever schema it sits in (a superuser may create objects in pg_catalog).
 */

/** A pg_cast row `c` whose conversion runs user code: its function, or a user type's I/O function. */
const USER_CAST = `(c.castfunc >= 16384 OR (c.castmethod = 'i' AND EXISTS (SELECT 1 FROM pg_type s, pg_type d
     WHERE s.oid = c.castsource AND d.oid = c.casttarget AND (s.typoutput::oid >= 16384 OR d.typinput::oid >= 16384))))`;

/** A pg_operator row `o` that runs user code: its function or its planner estimators. */
const USER_OPERATOR = `(o.oprcode::oid >= 16384 OR o.oprrest::oid >= 16384 OR o.oprjoin::oid >= 16384)`;

/** Every operator name, and whether every operator of that name runs built-in code only. */
const OPERATORS_SQL = `SELECT o.oprname, bool_and(NOT ${USER_OPERATOR})::text FROM pg_operator o GROUP BY o.oprname`;

/**
 * Types whose default btree or hash operator class (what DISTINCT, GROUP BY, UNION, ORDER BY, min/max,
 * GREATEST, array equality ... compare with, no operator written) runs user code for the type itself:
 * a superuser's `CREATE OPERATOR CLASS ... DEFAULT FOR TYPE point USING hash` with a user hash
 * function, built-in type or not. Cross-type members (other left/right types) are not the type's own;
 * other access methods' default classes (btree_gist's for int4) are used only by indexes.
 */
const USER_DEFAULT_OPCLASS = `SELECT oc.opcintype FROM pg_opclass oc
     WHERE oc.opcdefault AND oc.opcmethod IN (SELECT m.oid FROM pg_am m WHERE m.amname IN ('btree', 'hash'))
       AND ${userOpclass('oc')}`;

/** The operator class `oc` compares its own type with user code: a support function or an operator. */
function userOpclass(oc: string): string {
  return `(EXISTS (SELECT 1 FROM pg_amproc p WHERE p.amprocfamily = ${oc}.opcfamily AND p.amproc::oid >= 16384
                 AND p.amproclefttype = ${oc}.opcintype AND p.amprocrighttype = ${oc}.opcintype)
       OR EXISTS (SELECT 1 FROM pg_amop a JOIN pg_operator o ON o.oid = a.amopopr
                 WHERE a.amopfamily = ${oc}.opcfamily AND a.amoplefttype = ${oc}.opcintype
                   AND a.amoprighttype = ${oc}.opcintype AND ${USER_OPERATOR}))`;
}

/**
 * A column `a` of relation `c` that is a key of an index, or of the partition key, whose operator class
 * runs user code (a superuser's non-default class: `CREATE INDEX ON t (body leaky_text_ops)`): an index
 * scan or partition pruning for a predicate on it calls that code, with no operator or function written.
 */
const USER_KEYED_COLUMN = `(EXISTS (SELECT 1 FROM pg_index i
       CROSS JOIN LATERAL unnest(i.indkey::int2[], i.indclass::oid[]) AS k(attnum, opclass)
       JOIN pg_opclass ko ON ko.oid = k.opclass
     WHERE i.indrelid = c.oid AND k.attnum = a.attnum AND ${userOpclass('ko')})
   OR EXISTS (SELECT 1 FROM pg_partitioned_table pt
       CROSS JOIN LATERAL unnest(pt.partattrs::int2[], pt.partclass::oid[]) AS k(attnum, opclass)
       JOIN pg_opclass ko ON ko.oid = k.opclass
     WHERE pt.partrelid = c.oid AND k.attnum = a.attnum AND ${userOpclass('ko')}))`;

/**
 * Every type: oid, schema, name; whether its own code is the user's (a user type whose I/O, typmod,
 * analyze or subscript function, range function, domain check, operator, comparison support or cast
 * from it runs user code); whether a cast from a built-in type into it runs user code; and the types
 * its values are made of (element, domain base, range subtype, multirange's range, composite
 * attributes), through which that propagates.
 */
const TYPES_SQL = `SELECT t.oid, n.nspname, t.typname,
     (t.oid >= 16384 AND (
       GREATEST(t.typinput::oid, t.typoutput::oid, t.typreceive::oid, t.typsend::oid, t.typmodin::oid,
                t.typmodout::oid, t.typanalyze::oid, t.typsubscript::oid) >= 16384
       OR t.oid IN (SELECT r.rngtypid FROM pg_range r WHERE r.rngcanonical::oid >= 16384 OR r.rngsubdiff::oid >= 16384)
       OR t.oid IN (SELECT k.contypid FROM pg_constraint k JOIN pg_depend d
                      ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid
                    WHERE k.contypid <> 0 AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
                      AND d.refobjid >= 16384)
       OR t.oid IN (SELECT o.oprleft FROM pg_operator o WHERE ${USER_OPERATOR}
                    UNION SELECT o.oprright FROM pg_operator o WHERE ${USER_OPERATOR})
       OR t.oid IN (SELECT p.amproclefttype FROM pg_amproc p WHERE p.amproc::oid >= 16384
                    UNION SELECT p.amprocrighttype FROM pg_amproc p WHERE p.amproc::oid >= 16384)
       OR t.oid IN (SELECT c.castsource FROM pg_cast c WHERE ${USER_CAST}))
     OR t.oid IN (${USER_DEFAULT_OPCLASS}))::text,
     (t.oid IN (SELECT c.casttarget FROM pg_cast c WHERE c.castsource < 16384 AND ${USER_CAST}))::text,
     concat_ws(',', NULLIF(t.typelem, 0), NULLIF(t.typbasetype, 0),
       (SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid),
       (SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid),
       CASE WHEN t.typrelid <> 0 THEN (SELECT string_agg(a.atttypid::text, ',') FROM pg_attribute a
         WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END)
   FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname !~ '^pg_toast'`;

/** Implicit and assignment casts from built-in types that run user code: they fire with no syntax. */
const IMPLICIT_CASTS_SQL = `SELECT count(*)::text FROM pg_cast c
   WHERE c.castcontext IN ('i', 'a') AND c.castsource < 16384 AND ${USER_CAST}`;

/**
 * What each view and materialized view made after initdb (extensions' included) references, from its
 * rewrite rule's pg_depend rows: relations and functions, so views over views are followed.
 */
const VIEW_DEPENDENCIES_SQL = `SELECT DISTINCT r.ev_class,
     CASE WHEN d.refclassid = 'pg_proc'::regclass THEN 'f' ELSE 'r' END, d.refobjid
   FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
   WHERE r.ev_class >= 16384 AND d.refobjid <> r.ev_class
     AND d.refclassid IN ('pg_class'::regclass, 'pg_proc'::regclass)`;

export const CATALOG_SQL = [
  // Views print with every name qualified (but pg_catalog's), whatever the role's default search_path.
  `${OWN_QUERY_MARK}SET search_path = ''`,
  `SELECT c.oid, n.nspname, c.relname, c.relkind::text, a.attnum, a.attname, a.atttypid,
     CASE WHEN c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND coalesce(a.attnum, 1) = 1
          THEN pg_get_viewdef(c.oid) END,
     a.attgenerated::text,
     CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
     CASE WHEN a.attgenerated <> '' THEN EXISTS (SELECT 1 FROM pg_depend x
       WHERE x.classid = 'pg_attrdef'::regclass AND x.objid = d.oid AND x.refobjid >= 16384
         AND x.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass))::text END,
     CASE WHEN c.relkind IN ('r', 'p', 'm') AND a.attnum IS NOT NULL THEN ${USER_KEYED_COLUMN}::text END
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname !~ '^pg_(toast|temp)'
   ORDER BY c.oid, a.attnum`,
  'SELECT inhrelid, inhparent FROM pg_inherits',
  // Per name: every function of it built in; every one of it in a system schema built in.
  `SELECT p.proname, bool_and(p.oid < 16384)::text,
     bool_and(p.oid < 16384 OR n.nspname NOT IN ('pg_catalog', 'information_schema'))::text
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace GROUP BY p.proname`,
  "SELECT n.nspname, has_schema_privilege(n.oid, 'USAGE')::text FROM pg_namespace n",
  `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname !~ '^pg_toast'`,
  PROCS_SQL,
  OPERATORS_SQL,
  TYPES_SQL,
  IMPLICIT_CASTS_SQL,
  VIEW_DEPENDENCIES_SQL,
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
    userCode,
    userKey,
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
      if (isTrue(userKey)) column.comparedByUserCode = true;
      if (generated) {
        column.generated = true;
        if (expression) column.generationExpression = expression;
        if (isTrue(userCode)) column.generatedByUserCode = true;
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
  const systemFunctions = new Map<string, boolean>();
  for (const [name, builtin, systemBuiltin] of rows.functions) {
    if (name === null) continue;
    functions.set(name.toLowerCase(), isTrue(builtin));
    systemFunctions.set(name.toLowerCase(), systemBuiltin == null || isTrue(systemBuiltin));
  }
  const version = ++versions;
  let statementText: StatementTextReaders | undefined;
  return {
    version,
    statementText: () => {
      statementText ??= readersOf(rows, byOid);
      return statementText;
    },
    ...nameLookup(rows),
    ...codeLookup(rows),
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
      if (schema) return SYSTEM_SCHEMAS.has(schema) && systemFunctions.get(bare) ? 'builtin' : 'user';
      // Unqualified: built in only when no other schema defines the same name (search_path could pick it).
      return builtin ? 'builtin' : 'user';
    },
  };
}

/** statement-text.ts over this load's relations, view dependencies and functions. */
function readersOf(rows: CatalogRows, byOid: ReadonlyMap<number, CatalogRelation>): StatementTextReaders {
  const relationNames = new Map([...byOid].map(([oid, r]) => [oid, r.name.toLowerCase()]));
  const viewDefinitions = [...byOid.values()].flatMap((r) =>
    r.viewDefinition === undefined ? [] : [[r.name.toLowerCase(), r.viewDefinition] as const],
  );
  return statementTextReaders({
    relationNames,
    viewDefinitions,
    viewDependencies: rows.viewDependencies ?? [],
    functions: (rows.procs ?? []).flatMap((row) => functionOf(row) ?? []),
  });
}

function isTrue(value: string | null | undefined): boolean {
  return value === 't' || value === 'true';
}

type CodeLookup = Pick<
  Catalog,
  'operatorKind' | 'typeKind' | 'opaqueType' | 'hasOpaqueTypes' | 'implicitUserCasts'
>;

/** Which operators and types run user code (OPERATORS_SQL, TYPES_SQL, IMPLICIT_CASTS_SQL). */
function codeLookup(rows: CatalogRows): CodeLookup {
  const operators = new Map<string, boolean>();
  for (const [name, builtin] of rows.operators ?? []) if (name !== null) operators.set(name, isTrue(builtin));
  const types = typeTable(rows.types ?? []);
  const opaque = [...types.byOid.keys()].filter((oid) => types.opaque(oid));
  return {
    operatorKind(name) {
      const builtin = operators.get(name);
      return builtin === undefined ? 'unknown' : builtin ? 'builtin' : 'user';
    },
    typeKind(names) {
      const bare = names[names.length - 1]?.toLowerCase() ?? '';
      const schema = names.length > 1 ? names[names.length - 2]!.toLowerCase() : undefined;
      const named = (types.byName.get(bare) ?? []).filter((t) => !schema || t.schema === schema);
      if (named.length === 0) return 'unknown';
      return named.some((t) => t.castInto || types.opaque(t.oid)) ? 'user' : 'builtin';
    },
    // A type missing from the load (the load failed to read types) could be anything.
    opaqueType: (oid) => !types.byOid.has(oid) || types.opaque(oid),
    hasOpaqueTypes: opaque.length > 0,
    implicitUserCasts: Number(rows.implicitCasts?.[0]?.[0] ?? 0) > 0,
  };
}

interface CatalogType {
  oid: number;
  schema: string;
  ownCode: boolean;
  castInto: boolean;
  /** The types its values are made of: element, domain base, range subtype, composite attributes. */
  inner: number[];
}

/** Types by oid and by lower-case name; `opaque`: its own code or that of a type it is made of is the user's. */
function typeTable(rows: (string | null)[][]) {
  const byOid = new Map<number, CatalogType>();
  const byName = new Map<string, CatalogType[]>();
  for (const [oid, schema, name, ownCode, castInto, inner] of rows) {
    if (oid == null || schema == null || name == null) continue;
    const t: CatalogType = {
      oid: Number(oid),
      schema: schema.toLowerCase(),
      ownCode: isTrue(ownCode),
      castInto: isTrue(castInto),
      inner: (inner ?? '').split(',').filter(Boolean).map(Number),
    };
    byOid.set(t.oid, t);
    push(byName, name.toLowerCase(), t);
  }
  const memo = new Map<number, boolean>();
  const opaque = (oid: number): boolean => {
    const known = memo.get(oid);
    if (known !== undefined) return known;
    memo.set(oid, false); // a type made of itself (through a composite) adds nothing
    const t = byOid.get(oid);
    const result = !!t && (t.ownCode || t.inner.some(opaque));
    memo.set(oid, result);
    return result;
  };
  return { byOid, byName, opaque };
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

/** Past this share of its TTL a snapshot is still served, and a fresh one is loaded beside it. */
const REFRESH_AHEAD = 0.8;

export function createCatalogSource(options: CatalogSourceOptions): CatalogSource {
  const ttl = options.ttlMs ?? 60_000;
  const fetch = options.fetch;
  let current: { catalog: Catalog; at: number } | undefined;
  /** The load in flight and the generation it started in (one started before an invalidation is not reused). */
  let loading: { promise: Promise<Catalog>; generation: number } | undefined;
  let generation = 0;
  const load = (): Promise<Catalog> => {
    const started = generation;
    const promise: Promise<Catalog> = Promise.all([fetch(), loadPlpgsqlParser()])
      .then(([rows]) => {
        const catalog = buildCatalog(rows);
        // An invalidation while loading means the snapshot may predate the change: keep it for this
        // caller only.
        if (started === generation) current = { catalog, at: Date.now() };
        return catalog;
      })
      .finally(() => {
        if (loading?.promise === promise) loading = undefined;
      });
    loading = { promise, generation: started };
    return promise;
  };
  /** The snapshot while it is fresh; near its end a reload starts, so no statement waits for one. */
  const fresh = (): Catalog | undefined => {
    if (!current) return undefined;
    const age = Date.now() - current.at;
    if (age >= ttl) return undefined;
    // A failed early reload changes nothing: at the end of the TTL a statement's own load fails closed.
    if (age >= ttl * REFRESH_AHEAD && !loading) load().catch(() => undefined);
    return current.catalog;
  };
  return {
    get() {
      const now = fresh();
      if (now) return Promise.resolve(now);
      return loading?.generation === generation ? loading.promise : load();
    },
    invalidate() {
      generation++;
      current = undefined;
    },
    close() {
      current = undefined;
    },
    peek: fresh,
    refreshIfOlder(ms) {
      if (current && Date.now() - current.at >= ms) {
        generation++;
        current = undefined;
      }
      return this.get();
    },
  };
}
