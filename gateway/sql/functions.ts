/**
 * What calling a function may do, from the catalog: built-ins by the lists in builtins.ts; other
 * functions by reading their bodies — LANGUAGE sql (`prosrc`, or the BEGIN ATOMIC body) with the SQL
 * parser, PL/pgSQL with PostgreSQL's PL/pgSQL parser — and classifying the statements they run,
 * recursively (bounded depth), under the function's own search_path (a SET clause) or the caller's.
 * A body that cannot be read (C, other languages, SQL built at run time with EXECUTE) counts by its
 * declared volatility: immutable and stable functions read; a volatile one of unknown effect is
 * `procedural` — code the gateway cannot see into, like DO and CALL. Pure: the catalog is an interface.
 */
import type { StatementClass } from '../../src/shared/statement.js';
import { builtinEffect, changesUnnamed } from './builtins.js';
import { decodeFunctionRef, decodeRelationRef, joinIdentifierList, quoteIdentifier } from './names.js';
import { parseSql } from './parser.js';
import { dollarQuote, readPlpgsql } from './plpgsql.js';
import {
  type CatalogFunction,
  effectivePaths,
  type NameLookup,
  type PathContext,
  resolveFunction,
  resolveRelation,
} from './search-path.js';
import { isSideChannelFunction } from './side-channels.js';
import { classifyStatement, syntaxExtrasOf } from './syntax.js';
import { isObject, unwrapNode } from './walk.js';

/** How far function bodies are followed into the functions they call. */
export const MAX_FUNCTION_DEPTH = 8;

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/** What a function (or a set of overload candidates) may do. */
export interface FunctionEffect {
  /** The classes of what it runs (`read` when it only reads). */
  classes: Set<StatementClass>;
  sideChannels: Set<string>;
  /** It runs SQL text built at run time. */
  dynamicSql: boolean;
  /** It may change session settings (set_config, SET) or its effect on them is unknown. */
  settings: boolean;
  /** Relations its body reads or writes (resolved names). */
  relations: Set<string>;
  /** Functions its body calls, resolved (for rules narrowing by functions). */
  functions: Set<string>;
  /**
   * It may change something no relation names: a writing built-in (setval's sequence is a text
   * argument, a large object an OID) or code the gateway cannot read.
   */
  untargeted: boolean;
}

export function emptyEffect(): FunctionEffect {
  return {
    classes: new Set(),
    sideChannels: new Set(),
    dynamicSql: false,
    settings: false,
    relations: new Set(),
    functions: new Set(),
    untargeted: false,
  };
}

export function mergeEffect(into: FunctionEffect, from: FunctionEffect): void {
  for (const c of from.classes) into.classes.add(c);
  for (const s of from.sideChannels) into.sideChannels.add(s);
  for (const r of from.relations) into.relations.add(r);
  for (const f of from.functions) into.functions.add(f);
  into.dynamicSql ||= from.dynamicSql;
  into.settings ||= from.settings;
  into.untargeted ||= from.untargeted;
}

/** Unknown code: procedural, may change settings. */
function opaque(): FunctionEffect {
  const e = emptyEffect();
  e.classes.add('procedural');
  e.settings = true;
  e.untargeted = true;
  return e;
}

interface Analysis {
  lookup: NameLookup;
  ctx: PathContext;
  depth: number;
  /** Functions being analysed up the call chain (recursion is followed once). */
  active: Set<number>;
  memo: Map<string, FunctionEffect>;
}

const memos = new WeakMap<NameLookup, Map<string, FunctionEffect>>();

/** What calling one of these candidates may do (all of them: the server picks one by argument types). */
export function effectOfCandidates(
  candidates: readonly CatalogFunction[],
  lookup: NameLookup,
  ctx: PathContext,
): FunctionEffect {
  let memo = memos.get(lookup);
  if (!memo) {
    memo = new Map();
    memos.set(lookup, memo);
  }
  const analysis: Analysis = { lookup, ctx, depth: 0, active: new Set(), memo };
  const effect = emptyEffect();
  for (const f of candidates) mergeEffect(effect, effectOf(f, analysis));
  return effect;
}

function effectOf(f: CatalogFunction, a: Analysis): FunctionEffect {
  // Built-ins, and anything named like a side channel in any schema (dblink's functions live in the
  // schema the extension was installed in): the lists decide.
  if (SYSTEM_SCHEMAS.has(f.schema) || isSideChannelFunction(f.name.toLowerCase())) return builtin(f);
  if (a.active.has(f.oid)) return emptyEffect(); // recursion: its effect is counted where it started
  if (a.depth >= MAX_FUNCTION_DEPTH) return opaque();
  const key = `${f.oid}|${f.searchPath ? '' : JSON.stringify([a.ctx.searchPaths, a.ctx.users])}`;
  const cached = a.memo.get(key);
  if (cached) return cached;
  a.active.add(f.oid);
  a.depth++;
  let effect: FunctionEffect;
  try {
    effect = userFunction(f, a);
  } finally {
    a.depth--;
    a.active.delete(f.oid);
  }
  a.memo.set(key, effect);
  return effect;
}

function builtin(f: CatalogFunction): FunctionEffect {
  const e = emptyEffect();
  const bare = f.name.toLowerCase();
  if (isSideChannelFunction(bare)) {
    // The built-in deny-list governs these (server files, other sessions ...), whatever they do.
    e.sideChannels.add(bare);
    e.classes.add('read');
    return e;
  }
  // set_config's own arguments are read where it is called (syntax.ts); its class is session.
  const kind = builtinEffect(f.name, f.volatility);
  e.classes.add(kind);
  e.untargeted = changesUnnamed(kind, f.name);
  return e;
}

function userFunction(f: CatalogFunction, a: Analysis): FunctionEffect {
  if (f.kind === 'a') {
    // An aggregate runs its support functions (transition, final ...).
    const e = emptyEffect();
    e.classes.add('read');
    for (const oid of f.support ?? []) {
      const support = a.lookup.functionByOid(oid);
      mergeEffect(e, support ? effectOf(support, a) : opaque());
    }
    return e;
  }
  const statements = bodyStatements(f);
  if (!statements) {
    // Nothing to read: the declared volatility is all there is.
    if (f.volatility !== 'v') {
      const e = emptyEffect();
      e.classes.add('read');
      return e;
    }
    return opaque();
  }
  const ctx: PathContext = f.searchPath
    ? { ...a.ctx, searchPaths: [joinIdentifierList(f.searchPath)] }
    : a.ctx;
  const effect = emptyEffect();
  effect.classes.add('read');
  if (statements.dynamic) {
    mergeEffect(effect, opaque());
    effect.dynamicSql = true;
  }
  if (statements.transaction) effect.classes.add('procedural');
  for (const node of statements.nodes) mergeEffect(effect, statementEffect(node, a, ctx));
  if (statements.unreadable) mergeEffect(effect, opaque());
  return effect;
}

export interface Body {
  nodes: unknown[];
  dynamic: boolean;
  transaction: boolean;
  /** Part of the body could not be parsed. */
  unreadable: boolean;
}

/** The statement nodes a function's body runs, or undefined when the body cannot be read. */
export function bodyStatements(f: CatalogFunction): Body | undefined {
  const language = f.language.toLowerCase();
  if (language === 'sql') {
    try {
      if (f.sqlBody !== undefined)
        return { ...sqlBodyNodes(f.sqlBody), dynamic: false, transaction: false, unreadable: false };
      if (f.source === undefined) return undefined;
      return {
        nodes: (parseSql(f.source).stmts ?? []).map((s) => s.stmt),
        dynamic: false,
        transaction: false,
        unreadable: false,
      };
    } catch {
      return undefined;
    }
  }
  if (language === 'plpgsql' && f.source !== undefined) {
    const tag = dollarQuote(f.source);
    const header = f.kind === 'p' ? 'PROCEDURE' : 'FUNCTION';
    const body = readPlpgsql(
      `CREATE ${header} ${quoteIdentifier(f.name)}(${f.arguments ?? ''})${f.kind === 'p' ? '' : ` RETURNS ${f.result ?? 'void'}`} LANGUAGE plpgsql AS ${tag}${f.source}${tag}`,
    );
    if (!body) return undefined;
    const nodes: unknown[] = [];
    let unreadable = false;
    for (const text of body.statements) {
      try {
        for (const s of parseSql(text).stmts ?? []) nodes.push(s.stmt);
      } catch {
        unreadable = true;
      }
    }
    return { nodes, dynamic: body.dynamic, transaction: body.transaction, unreadable };
  }
  return undefined;
}

/** `BEGIN ATOMIC ...; END` or `RETURN expr` (pg_get_function_sqlbody) as statement nodes. */
function sqlBodyNodes(sqlBody: string): { nodes: unknown[] } {
  const parsed = parseSql(`CREATE FUNCTION f() RETURNS int LANGUAGE sql ${sqlBody}`);
  const create = unwrapNode(parsed.stmts?.[0]?.stmt)?.[1];
  const body = create?.sql_body;
  const ret = unwrapNode(body);
  if (ret?.[0] === 'ReturnStmt') {
    return { nodes: [{ SelectStmt: { targetList: [{ ResTarget: { val: ret[1].returnval } }] } }] };
  }
  const nodes: unknown[] = [];
  const walk = (v: unknown): void => {
    const n = unwrapNode(v);
    if (n?.[0] === 'List') {
      for (const item of Array.isArray(n[1].items) ? n[1].items : []) walk(item);
    } else if (n) nodes.push(v);
    else if (Array.isArray(v)) for (const item of v) walk(item);
    else if (isObject(v)) for (const item of Object.values(v)) walk(item);
  };
  walk(body);
  return { nodes };
}

/** What one statement of a body does: its class, what its own calls do, the relations it touches. */
function statementEffect(node: unknown, a: Analysis, ctx: PathContext): FunctionEffect {
  const stmt = classifyStatement(node, '');
  const e = emptyEffect();
  e.classes.add(stmt.unplaceable ? 'procedural' : bodyClass(stmt.class));
  for (const s of stmt.sideChannels) e.sideChannels.add(s);
  if (stmt.flags.includes('dynamic-sql')) e.dynamicSql = true;
  if (stmt.flags.includes('function-write')) e.untargeted = true;
  const extras = syntaxExtrasOf(stmt);
  if (extras && (extras.settingOps.some((op) => op.op !== 'begin') || extras.dynamicSetting))
    e.settings = true;
  const paths = effectivePaths(ctx, a.lookup);
  for (const text of stmt.relations)
    for (const name of resolveRelation(decodeRelationRef(text), paths, ctx, a.lookup)) e.relations.add(name);
  if (extras?.runs === false) return e;
  for (const text of stmt.functions) {
    const resolved = resolveFunction(decodeFunctionRef(text), paths, a.lookup);
    for (const name of resolved.names) e.functions.add(name);
    if (resolved.candidates.length === 0) {
      mergeEffect(e, opaque()); // a function the catalog does not know
      continue;
    }
    for (const f of resolved.candidates) mergeEffect(e, effectOf(f, a));
  }
  return e;
}

/** A body statement's class as an effect: transaction control and utilities are code we cannot follow. */
function bodyClass(cls: StatementClass): StatementClass {
  if (cls === 'copy-out') return 'read';
  if (cls === 'copy-in') return 'write';
  if (cls === 'transaction' || cls === 'utility') return 'procedural';
  return cls;
}
