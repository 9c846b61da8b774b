/**
 * The second half of classification: from what a statement names (syntax.ts) to what the server will
 * use. Relations and functions resolve through the session's search_path and the catalog
 * (search-path.ts); a function call is classed by what the function may do (functions.ts); what the
 * statement does to settings is handed back so the session's settings model can follow it.
 *
 * A statement may belong to several classes (`select f(), * from t` reads t and runs f's DELETE): its
 * `class` is the most consequential one and `alsoClasses` the others; policy decides each and the
 * strictest verdict wins, so a deny rule on reads still catches a read that also writes.
 *
 * Without a catalog (`lookup` undefined: the offline `policy test`, or a decision that does not depend
 * on names) resolution is textual: an unqualified relation is taken to live in the path's first schema
 * (`public` by default), a function by its name as written, and built-ins by name. Pure.
 */
import type {
  Classification,
  ClassifiedStatement,
  StatementClass,
  StatementFlag,
} from '../../src/shared/statement.js';
import { builtinEffect, changesUnnamed } from './builtins.js';
import { effectOfCandidates, emptyEffect, type FunctionEffect, mergeEffect } from './functions.js';
import { decodeFunctionRef, decodeRelationRef, parseName } from './names.js';
import {
  DEFAULT_SEARCH_PATH,
  effectivePaths,
  type NameLookup,
  type PathContext,
  relationMissing,
  resolveFunction,
  resolveRelation,
  TEMP_SCHEMA,
} from './search-path.js';
import {
  parseBoolean,
  pathsCover,
  SessionSettings,
  type SettingOp,
  SettingsView,
  UNKNOWN_VALUE,
} from './settings.js';
import {
  boundSearchPathsOf,
  copySyntaxFacts,
  preparedUseOf,
  setPreparedUse,
  syntaxExtrasOf,
} from './syntax.js';

/** Most consequential first: a statement's `class` is the first of its classes in this order. */
const CLASS_ORDER: readonly StatementClass[] = [
  'procedural',
  'admin',
  'dcl',
  'ddl',
  'write',
  'copy-in',
  'copy-out',
  'session',
  'transaction',
  'utility',
  'read',
];

/** What the session must do when a statement completes, and what it may not do at all. */
export interface StatementEffects {
  settingOps: SettingOp[];
  /** Temporary relations it creates (the session holds them from now on). */
  createsTemp: string[];
  /** DISCARD TEMP / ALL. */
  discardsTemp: boolean;
  /** Why it may not run in this session: it would change a setting the gateway holds. */
  heldViolation?: string;
}

export interface ResolveContext {
  /** The catalog, or undefined for textual resolution. */
  lookup?: NameLookup;
  /** The session's settings as confirmed by the server, and the effects of statements still in flight. */
  settings: SessionSettings;
  pending?: readonly (readonly SettingOp[])[];
  /** The current role at session start (`$user`), when the settings model has no session_authorization. */
  loginUser?: string;
  tempRelations?: ReadonlySet<string>;
  opaqueTemp?: boolean;
  /** Settings the gateway holds for this session (name → value), e.g. default_transaction_read_only = on. */
  held?: ReadonlyMap<string, string>;
}

export interface ResolvedMessage {
  classification: Classification;
  /** One entry per statement. */
  effects: StatementEffects[];
  /** Some name was not in the catalog snapshot (it may be newer than the snapshot: reload and retry). */
  missing: boolean;
}

/** Resolve every statement of a message, each seeing the settings the ones before it leave. */
export function resolveMessage(classification: Classification, ctx: ResolveContext): ResolvedMessage {
  if (!classification.ok) return { classification, effects: [], missing: false };
  const view = SettingsView.of(ctx.settings, ctx.pending ?? []);
  const temp = new Set(ctx.tempRelations ?? []);
  let missing = false;
  const effects: StatementEffects[] = [];
  const statements = classification.statements.map((stmt) => {
    const resolved = resolveStatement(stmt, view, temp, ctx);
    missing ||= resolved.missing;
    effects.push(resolved.effects);
    view.apply(resolved.effects.settingOps, ctx.settings);
    for (const name of resolved.effects.createsTemp) temp.add(name);
    return resolved.statement;
  });
  return { classification: { ok: true, statements }, effects, missing };
}

/** A session that never changed anything, under the server's default search_path. */
const DEFAULT_SETTINGS = new SessionSettings(new Map([['search_path', DEFAULT_SEARCH_PATH]]));

/** Resolve with no session: the server's default search_path and no catalog (offline `policy test`). */
export function resolveTextually(classification: Classification): Classification {
  return resolveMessage(classification, { settings: DEFAULT_SETTINGS }).classification;
}

function pathContext(view: SettingsView, temp: ReadonlySet<string>, ctx: ResolveContext): PathContext {
  const users = new Set<string>();
  const roles = view.values('role');
  for (const role of roles.length > 0 ? roles : ['none']) {
    if (role === UNKNOWN_VALUE) users.add(UNKNOWN_VALUE);
    else if (role !== 'none' && role !== '') users.add(role);
    else {
      const sessionUsers = view.values('session_authorization');
      if (sessionUsers.length === 0) users.add(ctx.loginUser ?? UNKNOWN_VALUE);
      for (const u of sessionUsers) users.add(u);
    }
  }
  if (users.size === 0) users.add(ctx.loginUser ?? UNKNOWN_VALUE);
  return {
    searchPaths: view.values('search_path'),
    users: [...users],
    tempRelations: temp,
    opaqueTemp: ctx.opaqueTemp,
  };
}

function resolveStatement(
  stmt: ClassifiedStatement,
  view: SettingsView,
  temp: ReadonlySet<string>,
  ctx: ResolveContext,
): { statement: ClassifiedStatement; effects: StatementEffects; missing: boolean } {
  const lookup = ctx.lookup;
  const extras = syntaxExtrasOf(stmt);
  const pathCtx = pathContext(view, temp, ctx);
  const paths = effectivePaths(pathCtx, lookup);
  let missing = false;

  const relations = new Set<string>();
  const createsTemp: string[] = [];
  for (const text of stmt.relations) {
    const ref = decodeRelationRef(text);
    const names = resolveRelation(ref, paths, pathCtx, lookup);
    for (const name of names) relations.add(name);
    if (ref.creates && names.some((n) => parseName(n)[0] === TEMP_SCHEMA)) createsTemp.push(ref.name);
    if (lookup && relationMissing(ref, paths, lookup, pathCtx)) missing = true;
  }

  const effect = emptyEffect();
  const functions = new Set<string>();
  const runs = extras?.runs !== false;
  for (const text of stmt.functions) {
    const ref = decodeFunctionRef(text);
    const resolved = resolveFunction(ref, paths, lookup);
    for (const name of resolved.names) functions.add(name);
    if (!runs) continue;
    if (!lookup) {
      // No catalog: built-ins by name, anything else as a read (textual classification).
      const e = emptyEffect();
      const kind = builtinEffect(ref.name, 'i');
      e.classes.add(kind);
      e.untargeted = changesUnnamed(kind, ref.name);
      mergeEffect(effect, e);
    } else if (resolved.candidates.length === 0) {
      missing = true;
      const unknown = emptyEffect();
      unknown.classes.add('procedural');
      unknown.settings = true;
      mergeEffect(effect, unknown);
    } else {
      mergeEffect(effect, effectOfCandidates(resolved.candidates, lookup, pathCtx));
    }
  }
  for (const r of effect.relations) relations.add(r);
  for (const f of effect.functions) functions.add(f);

  const classes = new Set<StatementClass>([stmt.class, ...(stmt.alsoClasses ?? [])]);
  for (const c of effect.classes) if (c !== 'read' || stmt.class === 'copy-out') classes.add(c);
  // COPY (SELECT f()) TO ...: a copy-out that runs a write is a write (as before); its reads stay copy-out.
  if (stmt.class === 'copy-out') classes.delete('read');
  const ordered = CLASS_ORDER.filter((c) => classes.has(c));
  const primary = ordered[0] ?? stmt.class;

  const flags = new Set<StatementFlag>(stmt.flags);
  if (effect.dynamicSql) flags.add('dynamic-sql');
  if (effect.untargeted) flags.add('function-write');
  const sideChannels = new Set([...stmt.sideChannels, ...effect.sideChannels]);
  if (sideChannels.size > 0) flags.add('side-channel');

  const settingOps = settingOpsOf(stmt, extras, effect, primary);
  const resolved: ClassifiedStatement = {
    ...stmt,
    class: primary,
    relations: [...relations].sort(),
    functions: [...functions].sort(),
    flags: [...flags].sort(),
    sideChannels: [...sideChannels].sort(),
  };
  const others = ordered.filter((c) => c !== primary);
  if (others.length > 0) resolved.alsoClasses = others;
  else delete resolved.alsoClasses;
  copySyntaxFacts(stmt, resolved);
  // A FETCH of a portal bound under another search_path (or one not known exactly): the server runs
  // the plan of the Bind, the names here are resolved under the path now.
  const bound = boundSearchPathsOf(stmt);
  if (bound !== undefined && !pathsCover(pathCtx.searchPaths, bound))
    resolved.unplaceable =
      'a portal bound under another search_path than the session may have here; bind it again';
  const use = preparedUseOf(stmt);
  if (use?.action === 'prepare') {
    // What EXECUTE will run, resolved the same way (for callers that resolve before the session tracker).
    setPreparedUse(resolved, {
      ...use,
      statement: resolveStatement(use.statement, view, temp, ctx).statement,
    });
  }
  const effects: StatementEffects = {
    settingOps,
    createsTemp,
    discardsTemp: extras?.discardsTemp === true,
  };
  const violation = heldViolation(settingOps, extras?.dynamicSetting === true || effect.settings, ctx.held);
  if (violation) effects.heldViolation = violation;
  return { statement: resolved, effects, missing };
}

/** What the statement does to settings: its own SET/set_config, or unknown when code we cannot see may. */
function settingOpsOf(
  stmt: ClassifiedStatement,
  extras: ReturnType<typeof syntaxExtrasOf>,
  effect: FunctionEffect,
  primary: StatementClass,
): SettingOp[] {
  const ops: SettingOp[] = [...(extras?.settingOps ?? [])];
  const unknown =
    extras?.dynamicSetting === true ||
    effect.settings ||
    (primary === 'procedural' && stmt.kind !== 'ExecuteStmt') ||
    // EXECUTE of a prepared statement: its set_config arguments are not known here.
    (extras === undefined && stmt.functions.some((f) => decodeFunctionRef(f).name === 'set_config'));
  if (unknown) ops.push({ op: 'unknown' });
  return ops;
}

/** A statement that would change a setting the gateway holds (only to the same value is fine). */
function heldViolation(
  ops: readonly SettingOp[],
  opaque: boolean,
  held: ReadonlyMap<string, string> | undefined,
): string | undefined {
  if (!held || held.size === 0) return undefined;
  for (const op of ops) {
    if (op.op !== 'set') continue;
    const name = op.name === 'transaction_read_only' ? 'default_transaction_read_only' : op.name;
    const holds = held.get(name);
    if (holds === undefined) continue;
    const same = op.value !== UNKNOWN_VALUE && sameSetting(holds, op.value);
    if (!same) return `it would change ${op.name}, which the gateway holds at ${holds} for this session`;
  }
  if (opaque)
    return `it may change settings the gateway holds for this session (${[...held.keys()].join(', ')})`;
  return undefined;
}

function sameSetting(a: string, b: string): boolean {
  const ba = parseBoolean(a);
  const bb = parseBoolean(b);
  if (ba !== undefined || bb !== undefined) return ba === bb;
  return a === b;
}
