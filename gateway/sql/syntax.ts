/**
 * The syntax half of classification, with the real PostgreSQL parser: for every statement of a
 * (multi-statement) string, its class as far as the statement alone tells, the relations and functions
 * it names (as references: resolve.ts turns them into the objects the server will use, through the
 * session's search_path and the catalog), its flags, the side channels it reaches, and what it does to
 * settings and the transaction. Synchronous and cached by the full text, so the hot path parses a given
 * text once. Never throws: text the parser rejects is `{ ok: false }`, a statement it cannot place
 * carries `unplaceable`, and policy denies both.
 */
import type {
  Classification,
  ClassifiedStatement,
  StatementClass,
  StatementFlag,
} from '../../src/shared/statement.js';
import { SEQUENCE_WRITING_FUNCTIONS } from './builtins.js';
import {
  ADMIN_OBJECT_TYPES,
  CLASS_BY_KIND,
  DCL_ALTER_TABLE_COMMANDS,
  DCL_OBJECT_TYPES,
  RELATION_OBJECT_TYPES,
} from './classes.js';
import { fingerprintOf } from './fingerprint.js';
import { SecondUseCache } from './lru.js';
import {
  decodeFunctionRef,
  encodeFunctionRef,
  encodeRelationRef,
  joinIdentifierList,
  splitQualifiedName,
} from './names.js';
import { isSqlParserLoaded, parseSql, statementTexts } from './parser.js';
import { normalizeSettingValue, parseBoolean, type SettingOp, UNKNOWN_VALUE } from './settings.js';
import {
  COPY_FILE,
  COPY_PROGRAM,
  isDynamicSqlFunction,
  isRoleSetting,
  isSecuritySetting,
  isSideChannelFunction,
  PREPARED_TRANSACTION,
  SET_CONFIG_DYNAMIC,
  settingSideChannel,
} from './side-channels.js';
import { collectFacts, isObject, nameParts, type TreeFacts, unwrapNode } from './walk.js';

/** How many distinct texts the cache keeps, and the longest text worth keeping (bulk loads are not repeated). */
export const CLASSIFY_CACHE_ENTRIES = 10_000;
export const CLASSIFY_CACHE_MAX_TEXT = 64 * 1024;

const cache = new SecondUseCache<string, Classification>(CLASSIFY_CACHE_ENTRIES);

/**
 * What a statement does with SQL-level prepared statements; the per-session tracker (session-sql.ts)
 * uses it to resolve EXECUTE. Kept beside the statement rather than in the shared type.
 */
export type PreparedUse =
  | { action: 'prepare'; name: string; statement: ClassifiedStatement }
  | { action: 'execute'; name: string; explainAnalyze: boolean }
  | { action: 'deallocate'; name: string | null };

/** LockStmt.mode of LOCK ... IN ACCESS SHARE MODE (lockdefs.h). */
const ACCESS_SHARE_LOCK = 1;
const UNKNOWN_SETTING = UNKNOWN_VALUE;

const preparedUses = new WeakMap<ClassifiedStatement, PreparedUse>();

export function preparedUseOf(statement: ClassifiedStatement): PreparedUse | undefined {
  return preparedUses.get(statement);
}

/** What name resolution needs besides the statement's fields (kept beside it, like PreparedUse). */
export interface SyntaxExtras {
  /** What the statement does to settings and the transaction, in order (SET, RESET, set_config, BEGIN ...). */
  settingOps: SettingOp[];
  /** False when its function calls do not run (EXPLAIN without ANALYZE). */
  runs: boolean;
  /** DISCARD TEMP / ALL: the session's temporary relations are gone. */
  discardsTemp?: boolean;
  /** Arguments of set_config calls could not be read as constants (any setting may change). */
  dynamicSetting?: boolean;
}

const extras = new WeakMap<ClassifiedStatement, SyntaxExtras>();

/** The syntax extras of a statement classifySyntax made (undefined for one built elsewhere, e.g. EXECUTE). */
export function syntaxExtrasOf(statement: ClassifiedStatement): SyntaxExtras | undefined {
  return extras.get(statement);
}

const boundPaths = new WeakMap<ClassifiedStatement, readonly string[]>();

/**
 * A resolved FETCH or MOVE of a portal made by a protocol Bind: every search_path it may have been
 * bound under ([UNKNOWN_VALUE] when not known). The server planned it then and never re-plans it.
 */
export function setBoundSearchPaths(
  statement: ClassifiedStatement,
  paths: readonly string[] | undefined,
): void {
  boundPaths.set(statement, paths && paths.length > 0 ? paths : [UNKNOWN_VALUE]);
}

export function boundSearchPathsOf(statement: ClassifiedStatement): readonly string[] | undefined {
  return boundPaths.get(statement);
}

/** Statements PREPARE can hold: run by EXECUTE, they change settings only through the functions they call. */
const PLANNABLE = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * A resolved SQL EXECUTE does to settings what its own parameters do, then what the statement it runs
 * does: a protocol Parse may hold SET, RESET, DISCARD or set_config, which SQL EXECUTE runs. A statement
 * whose facts are not known and that PREPARE could not have made may change any setting.
 */
export function setExecutedSyntaxFacts(
  resolved: ClassifiedStatement,
  use: ClassifiedStatement,
  runs: ClassifiedStatement,
): void {
  const own = extras.get(use);
  const ran = extras.get(runs);
  const extra: SyntaxExtras = {
    settingOps: [...(own?.settingOps ?? []), ...(ran?.settingOps ?? [])],
    runs: true,
  };
  const callsSetConfig = runs.functions.some((f) => decodeFunctionRef(f).name === 'set_config');
  if (!ran && (!PLANNABLE.has(runs.kind) || callsSetConfig)) extra.settingOps.push({ op: 'unknown' });
  if (ran?.discardsTemp) extra.discardsTemp = true;
  if (own?.dynamicSetting || ran?.dynamicSetting) extra.dynamicSetting = true;
  extras.set(resolved, extra);
}

/** A copy of a statement (name resolution makes one) keeps what the classifier noted beside it. */
export function copySyntaxFacts(from: ClassifiedStatement, to: ClassifiedStatement): void {
  const use = preparedUses.get(from);
  if (use) preparedUses.set(to, use);
  const extra = extras.get(from);
  if (extra) extras.set(to, extra);
  const bound = boundPaths.get(from);
  if (bound !== undefined) boundPaths.set(to, bound);
}

/** Replace the PreparedUse of a (resolved) statement: a resolved PREPARE carries its resolved inner statement. */
export function setPreparedUse(statement: ClassifiedStatement, use: PreparedUse): void {
  preparedUses.set(statement, use);
}

/** Classify the syntax of SQL text (cached). The result is shared between callers: treat it as read-only. */
export function classifySyntax(sql: string): Classification {
  const cached = cache.get(sql);
  if (cached) return cached;
  const result = classifySyntaxUncached(sql);
  if (isSqlParserLoaded() && sql.length <= CLASSIFY_CACHE_MAX_TEXT) cache.set(sql, result);
  return result;
}

/** Classify without the cache (benchmarks, tests). */
export function classifySyntaxUncached(sql: string): Classification {
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

export function clearSyntaxCache(): void {
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
  settingOps?: SettingOp[];
  discardsTemp?: boolean;
  /** `... FROM pg_settings WHERE name = 'x'`: the one setting a row's `name` can be. */
  settingsRowName?: string;
  /** More classes it belongs to (an UPDATE of pg_settings also sets a setting). */
  alsoClasses?: StatementClass[];
  dynamicSetting?: boolean;
}

/** Classify one statement node (also used for the statements of function bodies). */
export function classifyStatement(node: unknown, text: string): ClassifiedStatement {
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
  const placement = place(kind, body, facts, text);
  const settingsRowName = kind === 'SelectStmt' ? pgSettingsRowName(body) : undefined;
  if (settingsRowName !== undefined) placement.settingsRowName = settingsRowName;
  return finish(text, kind, node, facts, placement);
}

/**
 * `SELECT set_config(name, ...) FROM pg_settings WHERE name = 'x'` (pg_dump sets
 * restrict_nonsystem_relation_kind this way, if the server has it) can only set `x`: the one FROM item
 * is pg_settings and a top-level conjunct of WHERE pins `name`. Returns `x`, or undefined.
 */
function pgSettingsRowName(body: Record<string, unknown>): string | undefined {
  const from = Array.isArray(body.fromClause) ? body.fromClause : [];
  const table = unwrapNode(from[0]);
  if (from.length !== 1 || table?.[0] !== 'RangeVar') return undefined;
  const rel = table[1];
  if (rel.relname !== 'pg_settings' || (rel.schemaname !== undefined && rel.schemaname !== 'pg_catalog')) {
    return undefined;
  }
  const conjuncts: unknown[] = [];
  const where = unwrapNode(body.whereClause);
  if (where?.[0] === 'BoolExpr' && where[1].boolop === 'AND_EXPR')
    conjuncts.push(...(where[1].args as unknown[]));
  else conjuncts.push(body.whereClause);
  for (const conjunct of conjuncts) {
    const expr = unwrapNode(conjunct);
    if (expr?.[0] !== 'A_Expr' || expr[1].kind !== 'AEXPR_OP' || nameParts(expr[1].name).join('.') !== '=')
      continue;
    for (const [column, constant] of [
      [expr[1].lexpr, expr[1].rexpr],
      [expr[1].rexpr, expr[1].lexpr],
    ]) {
      if (isNameColumn(column)) {
        const value = constantString(constant);
        if (value !== undefined) return value.toLowerCase();
      }
    }
  }
  return undefined;
}

/** `name` or `<alias>.name`: pg_settings' setting name column. */
function isNameColumn(node: unknown): boolean {
  const ref = unwrapNode(node);
  if (ref?.[0] !== 'ColumnRef') return false;
  const fields = nameParts(ref[1].fields);
  return fields.length <= 2 && fields[fields.length - 1] === 'name';
}

/** Combine the placement with what the walk found: functions, side channels, flags, setting changes. */
function finish(
  text: string,
  kind: string,
  node: unknown,
  facts: TreeFacts,
  placement: Placement,
): ClassifiedStatement {
  const flags = new Set<StatementFlag>(placement.flags);
  const sideChannels = new Set(placement.sideChannels);
  const settingOps: SettingOp[] = [...(placement.settingOps ?? [])];
  let dynamicSetting = false;
  for (const call of facts.calls) {
    // Built-in names match in any schema and any case: that errs on the side of denying.
    const bare = call.bare.toLowerCase();
    if (isSideChannelFunction(bare)) sideChannels.add(bare);
    if (isDynamicSqlFunction(bare)) flags.add('dynamic-sql');
    if (SEQUENCE_WRITING_FUNCTIONS.has(bare)) {
      // nextval('public.orders_id_seq'): the sequence it changes is a relation of the statement; a
      // sequence computed at run time (or given as an OID) is a change no relation names.
      const target = sequenceTarget(call.args[0]);
      if (target) facts.relations.add(target);
      else flags.add('function-write');
    }
    if (bare === 'set_config') {
      const op = setConfigOp(call.args, isNameColumn(call.args[0]) ? placement.settingsRowName : undefined);
      // Only a bare `SELECT set_config(...)` surely runs it; a WHERE, a FROM, a CASE ... may not.
      if (op?.op === 'set' && !(kind === 'SelectStmt' && surelyRuns(node, call.node))) op.maybe = true;
      if (!op) {
        dynamicSetting = true;
        sideChannels.add(SET_CONFIG_DYNAMIC);
        flags.add('security-setting');
        continue;
      }
      settingOps.push(op);
      if (op.op === 'set' && isSecuritySetting(op.name)) {
        sideChannels.add(settingSideChannel(op.name));
        flags.add('security-setting');
        if (isRoleSetting(op.name)) flags.add('set-role');
      }
    }
  }
  if (facts.dataModifyingCte) flags.add('data-modifying-cte');
  if (facts.locking) flags.add('locking');
  if (facts.selectInto) flags.add('select-into');
  if (sideChannels.size > 0) flags.add('side-channel');
  const statement: ClassifiedStatement = {
    text,
    class: placement.class,
    kind,
    relations: [...facts.relations].sort(),
    functions: [
      ...new Set(
        facts.calls.map((c) => encodeFunctionRef({ schema: c.schema, name: c.bare, args: c.argCount })),
      ),
    ].sort(),
    flags: [...flags].sort(),
    sideChannels: [...sideChannels].sort(),
    fingerprint: fingerprintOf(node),
  };
  if (placement.unplaceable) statement.unplaceable = placement.unplaceable;
  if (placement.alsoClasses) statement.alsoClasses = placement.alsoClasses;
  if (placement.prepared) preparedUses.set(statement, placement.prepared);
  const extra: SyntaxExtras = { settingOps, runs: placement.runs !== false };
  if (placement.discardsTemp) extra.discardsTemp = true;
  if (dynamicSetting || placement.dynamicSetting) extra.dynamicSetting = true;
  extras.set(statement, extra);
  return statement;
}

/**
 * True when `call` is a top-level target of a SELECT with nothing that could keep it from running
 * once: no FROM, WHERE, GROUP BY, HAVING, LIMIT/OFFSET, DISTINCT, window or set operation.
 */
function surelyRuns(node: unknown, call: unknown): boolean {
  const select = unwrapNode(node)?.[1];
  if (!select) return false;
  const clauses = [
    'fromClause',
    'whereClause',
    'groupClause',
    'havingClause',
    'limitCount',
    'limitOffset',
    'distinctClause',
    'windowClause',
    'valuesLists',
    'larg',
    'rarg',
  ];
  for (const clause of clauses) {
    const value = select[clause];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) return false;
  }
  if (select.op !== undefined && select.op !== 'SETOP_NONE') return false;
  const targets = Array.isArray(select.targetList) ? select.targetList : [];
  return targets.some((t) => {
    let val = unwrapNode(t)?.[1].val;
    // set_config(...)::text is still the call
    while (unwrapNode(val)?.[0] === 'TypeCast') val = unwrapNode(val)![1].arg;
    return unwrapNode(val)?.[1] === call;
  });
}

/**
 * set_config(name, value, is_local) with constant arguments as a SET; undefined when they are not
 * constants. `rowName`: the setting a `name` column can only be (see pgSettingsRowName).
 */
function setConfigOp(args: readonly unknown[], rowName?: string): SettingOp | undefined {
  const name = rowName ?? constantString(args[0])?.toLowerCase();
  if (name === undefined) return undefined;
  const local = constantBoolean(args[2]);
  if (local === undefined) return undefined;
  if (isNullConstant(args[1])) return { op: 'reset', name, local };
  const value = constantString(args[1]);
  if (value === undefined) return { op: 'set', name, value: UNKNOWN_SETTING, local };
  return { op: 'set', name, value: normalizeSettingValue(name, value), local };
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
      // VALUES and TABLE are SelectStmt too. FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE lock rows
      // against other sessions' writes: a row-locking read is a write.
      if (body.intoClause) return simple('ddl', 'select-into');
      return simple(facts.dataModifyingCte || facts.locking ? 'write' : 'read');
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
    case 'DiscardStmt':
      return placeDiscard(body);
    case 'UpdateStmt':
      return placeUpdate(body);
    case 'DeallocateStmt':
      return {
        ...simple('session'),
        prepared: { action: 'deallocate', name: body.isall ? null : String(body.name ?? '') },
      };
    case 'VariableSetStmt':
      return placeSet(body);
    case 'DoStmt':
      return simple('procedural', 'dynamic-sql');
    case 'LockStmt':
      // ACCESS SHARE is the lock every SELECT takes (pg_dump takes it on each table it dumps); any
      // stronger mode is taken to change data or to keep others from it: a write.
      return simple(Number(body.mode ?? 8) <= ACCESS_SHARE_LOCK ? 'read' : 'write', 'locking');
    case 'TransactionStmt':
      if (body.kind === 'TRANS_STMT_COMMIT_PREPARED' || body.kind === 'TRANS_STMT_ROLLBACK_PREPARED') {
        return { class: 'transaction', flags: [], sideChannels: [PREPARED_TRANSACTION] };
      }
      return { ...simple('transaction'), settingOps: transactionOps(body) };
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
  // COPY (DELETE ... RETURNING *) TO STDOUT deletes, and COPY (SELECT ... FOR UPDATE) locks rows as
  // the SELECT does: each is a write, not a copy-out.
  const query = unwrapNode(body.query);
  const writes =
    query !== undefined && (query[0] !== 'SelectStmt' || facts.dataModifyingCte || facts.locking);
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
  const settingOps = setOps(body);
  const placement: Placement = { class: 'session', flags: [], sideChannels: [], settingOps };
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

/** What a SET / RESET / SET TRANSACTION / SET SESSION CHARACTERISTICS does to settings. */
function setOps(body: Record<string, unknown>): SettingOp[] {
  const name = typeof body.name === 'string' ? body.name.toLowerCase() : '';
  const local = body.is_local === true;
  const args = Array.isArray(body.args) ? body.args : [];
  switch (body.kind) {
    case 'VAR_SET_VALUE': {
      const value = setValue(name, args);
      return [{ op: 'set', name, value: value ?? UNKNOWN_SETTING, local }];
    }
    case 'VAR_SET_DEFAULT':
    case 'VAR_RESET':
      return [{ op: 'reset', name, local }];
    case 'VAR_RESET_ALL':
      return [{ op: 'reset-all' }];
    case 'VAR_SET_MULTI':
      // SET TRANSACTION ... lasts for the transaction; SET SESSION CHARACTERISTICS sets the defaults.
      return transactionModeOps(
        args,
        name === 'transaction' ? 'transaction_' : 'default_transaction_',
        name === 'transaction',
      );
    default:
      return []; // SET ... FROM CURRENT keeps the value it has
  }
}

/** The value a SET's arguments give a setting, in the form the server shows it (search_path: an identifier list). */
function setValue(name: string, args: readonly unknown[]): string | undefined {
  const values = args.map(constantValue);
  if (values.some((v) => v === undefined)) return undefined;
  if (name === 'search_path') return joinIdentifierList(values as string[]);
  return (values as string[]).join(', ');
}

/** BEGIN / START TRANSACTION / COMMIT / ROLLBACK / SAVEPOINT ... as transaction events. */
function transactionOps(body: Record<string, unknown>): SettingOp[] {
  const options = Array.isArray(body.options) ? body.options : [];
  const name = String(body.savepoint_name ?? '');
  const chain = body.chain === true;
  switch (body.kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      return [{ op: 'begin' }, ...transactionModeOps(options, 'transaction_', true)];
    case 'TRANS_STMT_COMMIT':
    case 'TRANS_STMT_PREPARE': // PREPARE TRANSACTION ends this session's transaction as a commit does
      return chain ? [{ op: 'commit' }, { op: 'begin' }] : [{ op: 'commit' }];
    case 'TRANS_STMT_ROLLBACK':
      return chain ? [{ op: 'rollback' }, { op: 'begin' }] : [{ op: 'rollback' }];
    case 'TRANS_STMT_SAVEPOINT':
      return [{ op: 'savepoint', name }];
    case 'TRANS_STMT_RELEASE':
      return [{ op: 'release', name }];
    case 'TRANS_STMT_ROLLBACK_TO':
      return [{ op: 'rollback-to', name }];
    default:
      return [];
  }
}

/** ISOLATION LEVEL / READ ONLY|WRITE / DEFERRABLE options as settings (`transaction_read_only` ...). */
function transactionModeOps(options: readonly unknown[], prefix: string, local: boolean): SettingOp[] {
  const ops: SettingOp[] = [];
  for (const option of options) {
    const def = unwrapNode(option)?.[1];
    if (!def || typeof def.defname !== 'string') continue;
    const setting = `${prefix}${def.defname.replace(/^transaction_/, '')}`;
    const value = constantValue(def.arg);
    ops.push({ op: 'set', name: setting, value: value ?? UNKNOWN_SETTING, local });
  }
  return ops;
}

/** DISCARD ALL also deallocates every prepared statement and resets every setting; TEMP drops temporary tables. */
/**
 * `UPDATE pg_settings SET setting = 'x' WHERE name = 'y'` is set_config('y', 'x', false) through the
 * view's rule: a write that is also a setting change, with SET's side channels. Which setting, when the
 * statement does not pin it with constants, is unknown (the `set_config` side channel).
 */
function placeUpdate(body: Record<string, unknown>): Placement {
  const placement: Placement = { class: 'write', flags: [], sideChannels: [] };
  const rel = isObject(body.relation) ? body.relation : undefined;
  if (rel?.relname !== 'pg_settings' || (rel.schemaname !== undefined && rel.schemaname !== 'pg_catalog')) {
    return placement;
  }
  placement.alsoClasses = ['session'];
  const name = pgSettingsRowName({ fromClause: [{ RangeVar: rel }], whereClause: body.whereClause });
  const targets = Array.isArray(body.targetList) ? body.targetList : [];
  const setting = targets.map((t) => unwrapNode(t)?.[1]).find((t) => t?.name === 'setting');
  const value = setting ? constantValue(setting.val) : undefined;
  if (name === undefined || value === undefined || targets.length !== 1) {
    placement.sideChannels.push(SET_CONFIG_DYNAMIC);
    placement.flags.push('security-setting');
    placement.dynamicSetting = true;
    return placement;
  }
  placement.settingOps = [
    { op: 'set', name, value: normalizeSettingValue(name, value), local: false, maybe: true },
  ];
  if (isSecuritySetting(name)) {
    placement.sideChannels.push(settingSideChannel(name));
    placement.flags.push('security-setting');
    if (isRoleSetting(name)) placement.flags.push('set-role');
  }
  return placement;
}

function placeDiscard(body: Record<string, unknown>): Placement {
  const placement: Placement = { class: 'session', flags: [], sideChannels: [] };
  if (body.target === 'DISCARD_ALL') {
    placement.prepared = { action: 'deallocate', name: null };
    placement.settingOps = [{ op: 'reset-all' }];
    placement.discardsTemp = true;
  } else if (body.target === 'DISCARD_TEMP') placement.discardsTemp = true;
  return placement;
}

function objectTypeClass(objectType: unknown): StatementClass {
  const type = String(objectType);
  if (ADMIN_OBJECT_TYPES.has(type)) return 'admin';
  if (DCL_OBJECT_TYPES.has(type)) return 'dcl';
  return 'ddl';
}

/** The sequence a constant regclass argument names, as a relation reference (`'s.seq'`, `'"Seq"'::regclass`). */
function sequenceTarget(arg: unknown): string | undefined {
  const text = constantString(arg);
  const parts = text === undefined ? undefined : splitQualifiedName(text);
  if (!parts) return undefined;
  // seq, s.seq, db.s.seq -> s.seq (the database part names this database)
  const ref =
    parts.length === 1
      ? { name: parts[0]! }
      : { schema: parts[parts.length - 2], name: parts[parts.length - 1]! };
  return encodeRelationRef(ref);
}

/** DROP TABLE a, s.b names its targets as lists of strings, not RangeVars. */
function addDroppedRelations(body: Record<string, unknown>, facts: TreeFacts): void {
  if (!RELATION_OBJECT_TYPES.has(String(body.removeType)) || !Array.isArray(body.objects)) return;
  for (const object of body.objects) {
    const list = unwrapNode(object);
    if (list?.[0] !== 'List') continue;
    const parts = nameParts(list[1].items);
    if (parts.length === 0) continue;
    // t, s.t, db.s.t -> s.t (the database part names this database)
    const ref =
      parts.length === 1
        ? { name: parts[0]! }
        : { schema: parts[parts.length - 2], name: parts[parts.length - 1]! };
    facts.relations.add(encodeRelationRef(ref));
  }
}

/** The value of a constant of any type as the server prints it in a setting (`on`, `1`, `'x'`). */
function constantValue(node: unknown): string | undefined {
  const unwrapped = unwrapNode(node);
  if (!unwrapped) return undefined;
  const [type, body] = unwrapped;
  if (type === 'TypeCast') return constantValue(body.arg);
  if (type === 'String') return String(body.sval ?? '');
  if (type === 'Integer') return String(body.ival ?? 0);
  if (type === 'Boolean') return body.boolval === true ? 'on' : 'off';
  if (type !== 'A_Const') return undefined;
  if (isObject(body.sval)) return String(body.sval.sval ?? '');
  if (isObject(body.ival)) return String(body.ival.ival ?? 0);
  if (isObject(body.fval)) return String(body.fval.fval ?? '');
  if (isObject(body.boolval)) return body.boolval.boolval === true ? 'on' : 'off';
  return undefined;
}

function constantBoolean(node: unknown): boolean | undefined {
  const value = constantValue(node);
  return value === undefined ? undefined : parseBoolean(value);
}

function isNullConstant(node: unknown): boolean {
  const unwrapped = unwrapNode(node);
  if (unwrapped?.[0] === 'TypeCast') return isNullConstant(unwrapped[1].arg);
  return unwrapped?.[0] === 'A_Const' && unwrapped[1].isnull === true;
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
