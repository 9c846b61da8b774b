/**
 * Classify SQL text with the real PostgreSQL parser: for every statement of a (multi-statement) string,
 * its class, the relations and functions it touches, its flags and the side channels it reaches.
 * Synchronous and cached by the full text, so the hot path parses a given text once. Never throws:
 * text the parser rejects is `{ ok: false }`, a statement it cannot place carries `unplaceable`, and
 * policy denies both.
 */
import type {
  Classification,
  ClassifiedStatement,
  StatementClass,
  StatementFlag,
} from '../../src/shared/statement.js';
import {
  ADMIN_OBJECT_TYPES,
  CLASS_BY_KIND,
  DCL_ALTER_TABLE_COMMANDS,
  DCL_OBJECT_TYPES,
  RELATION_OBJECT_TYPES,
} from './classes.js';
import { fingerprintOf } from './fingerprint.js';
import { LruCache } from './lru.js';
import { isSqlParserLoaded, parseSql, statementTexts } from './parser.js';
import {
  bareName,
  COPY_FILE,
  COPY_PROGRAM,
  isDynamicSqlFunction,
  isRoleSetting,
  isSecuritySetting,
  isSideChannelFunction,
  isWritingFunction,
  PREPARED_TRANSACTION,
  SET_CONFIG_DYNAMIC,
  settingSideChannel,
} from './side-channels.js';
import { collectFacts, dottedName, isObject, type TreeFacts, unwrapNode } from './walk.js';

/** How many distinct texts the cache keeps, and the longest text worth keeping (bulk loads are not repeated). */
export const CLASSIFY_CACHE_ENTRIES = 10_000;
export const CLASSIFY_CACHE_MAX_TEXT = 64 * 1024;

const cache = new LruCache<string, Classification>(CLASSIFY_CACHE_ENTRIES);

/**
 * What a statement does with SQL-level prepared statements; the per-session tracker (session-sql.ts)
 * uses it to resolve EXECUTE. Kept beside the statement rather than in the shared type.
 */
export type PreparedUse =
  | { action: 'prepare'; name: string; statement: ClassifiedStatement }
  | { action: 'execute'; name: string; explainAnalyze: boolean }
  | { action: 'deallocate'; name: string | null };

const preparedUses = new WeakMap<ClassifiedStatement, PreparedUse>();

export function preparedUseOf(statement: ClassifiedStatement): PreparedUse | undefined {
  return preparedUses.get(statement);
}

/** Classify SQL text (cached). The result is shared between callers: treat it as read-only. */
export function classify(sql: string): Classification {
  const cached = cache.get(sql);
  if (cached) return cached;
  const result = classifyUncached(sql);
  if (isSqlParserLoaded() && sql.length <= CLASSIFY_CACHE_MAX_TEXT) cache.set(sql, result);
  return result;
}

/** Classify without the cache (benchmarks, tests). */
export function classifyUncached(sql: string): Classification {
  try {
    // The parser refuses empty text; an empty query is a valid message with no statements.
    if (sql.trim() === '') return { ok: true, statements: [] };
    const parsed = parseSql(sql);
    const texts = statementTexts(sql, parsed);
    const statements = (parsed.stmts ?? []).map((raw, i) => classifyStatement(raw.stmt, texts[i] ?? ''));
    return { ok: true, statements };
  } catch (err) {
    // Syntax errors, and anything else (a tree too deep to walk, a parser failure): never wave through.
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, error: message || 'the statement could not be parsed' };
  }
}

export function clearClassifyCache(): void {
  cache.clear();
}

/** What placing a statement decides besides what the tree walk found. */
interface Placement {
  class: StatementClass;
  flags: StatementFlag[];
  sideChannels: string[];
  unplaceable?: string;
  /** False for statements that only plan (EXPLAIN without ANALYZE): their function calls do not run. */
  runs?: boolean;
  prepared?: PreparedUse;
}

function classifyStatement(node: unknown, text: string): ClassifiedStatement {
  const unwrapped = unwrapNode(node);
  if (!unwrapped) {
    return finish(text, 'Unknown', node, collectFacts(node), {
      class: 'utility',
      flags: [],
      sideChannels: [],
      unplaceable: 'the parser returned no statement',
    });
  }
  const [kind, body] = unwrapped;
  const facts = collectFacts(node);
  return finish(text, kind, node, facts, place(kind, body, facts, text));
}

/** Combine the placement with what the walk found: functions, side channels, flags. */
function finish(
  text: string,
  kind: string,
  node: unknown,
  facts: TreeFacts,
  placement: Placement,
): ClassifiedStatement {
  const flags = new Set<StatementFlag>(placement.flags);
  const sideChannels = new Set(placement.sideChannels);
  let statementClass = placement.class;
  let writes = false;
  for (const call of facts.calls) {
    if (isSideChannelFunction(call.name)) sideChannels.add(bareName(call.name));
    if (isDynamicSqlFunction(call.name)) flags.add('dynamic-sql');
    if (isWritingFunction(call.name)) writes = true;
    if (bareName(call.name) === 'set_config') {
      const setting = constantString(call.args[0]);
      if (setting === undefined) {
        sideChannels.add(SET_CONFIG_DYNAMIC);
        flags.add('security-setting');
      } else if (isSecuritySetting(setting)) {
        sideChannels.add(settingSideChannel(setting.toLowerCase()));
        flags.add('security-setting');
        if (isRoleSetting(setting)) flags.add('set-role');
      }
    }
  }
  if (facts.dataModifyingCte) flags.add('data-modifying-cte');
  if (facts.locking) flags.add('locking');
  if (facts.selectInto) flags.add('select-into');
  // A "read" that calls nextval(), pg_notify(), lo_create() ... changes something: it is a write.
  if (writes && placement.runs !== false && (statementClass === 'read' || statementClass === 'copy-out')) {
    statementClass = 'write';
  }
  if (sideChannels.size > 0) flags.add('side-channel');
  const statement: ClassifiedStatement = {
    text,
    class: statementClass,
    kind,
    relations: [...facts.relations].sort(),
    functions: [...new Set(facts.calls.map((c) => c.name))].sort(),
    flags: [...flags].sort(),
    sideChannels: [...sideChannels].sort(),
    fingerprint: fingerprintOf(node),
  };
  if (placement.unplaceable) statement.unplaceable = placement.unplaceable;
  if (placement.prepared) preparedUses.set(statement, placement.prepared);
  return statement;
}

/** The class (and statement-level flags) of one statement node. */
function place(kind: string, body: Record<string, unknown>, facts: TreeFacts, text: string): Placement {
  const simple = (cls: StatementClass, ...flags: StatementFlag[]): Placement => ({
    class: cls,
    flags,
    sideChannels: [],
  });
  switch (kind) {
    case 'SelectStmt':
      // VALUES and TABLE are SelectStmt too.
      if (body.intoClause) return simple('ddl', 'select-into');
      return simple(facts.dataModifyingCte ? 'write' : 'read');
    case 'CopyStmt':
      return placeCopy(body, facts);
    case 'ExplainStmt':
      return placeExplain(body, facts, text);
    case 'DeclareCursorStmt':
    case 'CreateTableAsStmt': {
      // DECLARE c CURSOR FOR <query>: the query's class. CREATE TABLE AS / MATERIALIZED VIEW: ddl.
      const inner = placeInner(body.query, facts, text);
      if (kind === 'DeclareCursorStmt') return inner;
      return { ...inner, class: 'ddl', flags: [...inner.flags, 'select-into'], prepared: undefined };
    }
    case 'PrepareStmt': {
      const inner = placeInner(body.query, facts, text);
      const statement = classifyStatement(body.query, text);
      const name = String(body.name ?? '');
      return {
        ...inner,
        flags: [...inner.flags, 'prepare'],
        prepared: { action: 'prepare', name, statement },
      };
    }
    case 'ExecuteStmt':
      return placeExecute(body, false);
    case 'DeallocateStmt':
      return {
        ...simple('session'),
        prepared: { action: 'deallocate', name: body.isall ? null : String(body.name ?? '') },
      };
    case 'DiscardStmt':
      // DISCARD ALL also deallocates every prepared statement.
      if (body.target === 'DISCARD_ALL') {
        return { ...simple('session'), prepared: { action: 'deallocate', name: null } };
      }
      return simple('session');
    case 'VariableSetStmt':
      return placeSet(body);
    case 'DoStmt':
      return simple('procedural', 'dynamic-sql');
    case 'LockStmt':
      return simple('utility', 'locking');
    case 'TransactionStmt':
      if (body.kind === 'TRANS_STMT_COMMIT_PREPARED' || body.kind === 'TRANS_STMT_ROLLBACK_PREPARED') {
        return { class: 'transaction', flags: [], sideChannels: [PREPARED_TRANSACTION] };
      }
      return simple('transaction');
    case 'AlterTableStmt': {
      const commands = Array.isArray(body.cmds) ? body.cmds : [];
      const changesAccess = commands.some((c) =>
        DCL_ALTER_TABLE_COMMANDS.has(String(unwrapNode(c)?.[1].subtype)),
      );
      return simple(changesAccess ? 'dcl' : 'ddl');
    }
    case 'DropStmt':
      addDroppedRelations(body, facts);
      return simple(objectTypeClass(body.removeType));
    case 'RenameStmt':
      return simple(objectTypeClass(body.renameType));
  }
  const cls = CLASS_BY_KIND[kind];
  if (cls) return simple(cls);
  return { ...simple('utility'), unplaceable: `no classification for statement type ${kind}` };
}

/** The placement of a statement nested in another (EXPLAIN, DECLARE, PREPARE, CREATE TABLE AS). */
function placeInner(node: unknown, facts: TreeFacts, text: string): Placement {
  const inner = unwrapNode(node);
  if (!inner)
    return { class: 'utility', flags: [], sideChannels: [], unplaceable: 'missing inner statement' };
  return place(inner[0], inner[1], facts, text);
}

function placeCopy(body: Record<string, unknown>, facts: TreeFacts): Placement {
  const flags: StatementFlag[] = [];
  const sideChannels: string[] = [];
  if (body.is_program) {
    flags.push('copy-program');
    sideChannels.push(COPY_PROGRAM);
  } else if (typeof body.filename === 'string') {
    flags.push('copy-file');
    sideChannels.push(COPY_FILE);
  }
  if (body.is_from) return { class: 'copy-in', flags, sideChannels };
  // COPY (DELETE ... RETURNING *) TO STDOUT deletes: it is a write, not a copy-out.
  const query = unwrapNode(body.query);
  const writes = query !== undefined && (query[0] !== 'SelectStmt' || facts.dataModifyingCte);
  return { class: writes ? 'write' : 'copy-out', flags, sideChannels };
}

/** EXPLAIN only plans (read); EXPLAIN ANALYZE runs the statement, so it takes the statement's class. */
function placeExplain(body: Record<string, unknown>, facts: TreeFacts, text: string): Placement {
  const analyze = (Array.isArray(body.options) ? body.options : []).some((option) => {
    const def = unwrapNode(option)?.[1];
    return def?.defname === 'analyze' && booleanOption(def.arg);
  });
  const innerNode = unwrapNode(body.query);
  if (!analyze) return { class: 'read', flags: [], sideChannels: [], runs: false };
  if (innerNode?.[0] === 'ExecuteStmt') return placeExecute(innerNode[1], true);
  const inner = placeInner(body.query, facts, text);
  const flags: StatementFlag[] = [...inner.flags];
  if (inner.class !== 'read') flags.push('explain-analyze-write');
  return { ...inner, flags, prepared: undefined };
}

/** EXECUTE name: what it runs is known only to the session (session-sql.ts resolves it). */
function placeExecute(body: Record<string, unknown>, explainAnalyze: boolean): Placement {
  const name = String(body.name ?? '');
  return {
    class: 'utility',
    flags: ['execute', 'dynamic-sql'],
    sideChannels: [],
    unplaceable: `EXECUTE of prepared statement "${name}", which this session has not prepared`,
    prepared: { action: 'execute', name, explainAnalyze },
  };
}

/** SET / RESET: setting a security-relevant setting is a side channel; resetting it is not. */
function placeSet(body: Record<string, unknown>): Placement {
  const placement: Placement = { class: 'session', flags: [], sideChannels: [] };
  const setting = typeof body.name === 'string' ? body.name.toLowerCase() : '';
  const setsValue = body.kind === 'VAR_SET_VALUE' || body.kind === 'VAR_SET_CURRENT';
  if (!setsValue || !isSecuritySetting(setting)) return placement;
  const args = Array.isArray(body.args) ? body.args : [];
  // SET ROLE NONE is RESET ROLE.
  if (setting === 'role' && args.length === 1 && constantString(args[0])?.toLowerCase() === 'none') {
    return placement;
  }
  placement.flags.push('security-setting');
  if (isRoleSetting(setting)) placement.flags.push('set-role');
  placement.sideChannels.push(settingSideChannel(setting));
  return placement;
}

function objectTypeClass(objectType: unknown): StatementClass {
  const type = String(objectType);
  if (ADMIN_OBJECT_TYPES.has(type)) return 'admin';
  if (DCL_OBJECT_TYPES.has(type)) return 'dcl';
  return 'ddl';
}

/** DROP TABLE a, s.b names its targets as lists of strings, not RangeVars. */
function addDroppedRelations(body: Record<string, unknown>, facts: TreeFacts): void {
  if (!RELATION_OBJECT_TYPES.has(String(body.removeType)) || !Array.isArray(body.objects)) return;
  for (const object of body.objects) {
    const list = unwrapNode(object);
    if (list?.[0] !== 'List') continue;
    const name = dottedName(list[1].items);
    if (!name) continue;
    // t -> public.t; s.t -> s.t; db.s.t -> s.t
    const parts = name.split('.');
    facts.relations.add(parts.length === 1 ? `public.${name}` : parts.slice(-2).join('.'));
  }
}

/** The string value of a constant (`'role'`, `'role'::text`), or undefined when it is not a constant. */
function constantString(node: unknown): string | undefined {
  const unwrapped = unwrapNode(node);
  if (!unwrapped) return undefined;
  const [type, body] = unwrapped;
  if (type === 'TypeCast') return constantString(body.arg);
  if (type === 'A_Const' && isObject(body.sval)) return String(body.sval.sval ?? '');
  return undefined;
}

/** `analyze`, `analyze true`, `analyze on`, `analyze 1` are on; `analyze false/off/0` are off. */
function booleanOption(arg: unknown): boolean {
  if (arg === undefined) return true;
  const unwrapped = unwrapNode(arg);
  if (!unwrapped) return true;
  const [type, body] = unwrapped;
  if (type === 'Boolean') return body.boolval === true;
  if (type === 'Integer') return Number(body.ival ?? 0) !== 0;
  if (type === 'String') return !['false', 'off', 'no', '0'].includes(String(body.sval).toLowerCase());
  return true;
}
