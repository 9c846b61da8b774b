/**
 * The session's settings as the server holds them, followed from what the server answers. PostgreSQL 15
 * does not report search_path (nor role) in ParameterStatus, so the gateway keeps its own copy, with the
 * server's own rules (guc.c): SET lasts for the session once its transaction commits, SET LOCAL until the
 * end of the transaction, a rolled-back transaction or savepoint undoes both, RESET returns to the value
 * the session started with (role and database defaults, startup parameters), and a function's own SET
 * clause never leaks. Pure: no sockets; one instance per client session.
 *
 * Inputs are events, in the order the server produced them:
 * - `executed(ops)`: a statement completed; `ops` are its setting effects;
 * - `transactionEvent(event)`: the session model's transaction boundaries (begin, commit, rollback —
 *   implicit transactions included —, savepoint, release, rollback-to), from the server's replies.
 * `error()` and `ready(status)` follow ErrorResponse and ReadyForQuery instead, for a caller without a
 * session model (unit tests); a gateway session uses the session model's events.
 *
 * Where the gateway cannot know a value (a `set_config` whose arguments are computed, code it cannot see
 * into that may call set_config), the value is UNKNOWN, and name resolution treats it as every schema.
 */
import { joinIdentifierList, splitIdentifierList } from './names.js';

/** A value the gateway cannot know. */
export const UNKNOWN_VALUE = '\u0000unknown';

const CHOICE = '\u0000choice:';

/**
 * Names resolved under every value in `now` cover what they meant under any value in `then`: each of
 * `then` is among `now`, or `now` may be anything (resolution then takes every schema). A `then` that
 * may be anything is covered by nothing but that.
 */
export function pathsCover(now: readonly string[], then: readonly string[] | undefined): boolean {
  if (now.includes(UNKNOWN_VALUE)) return true;
  if (!then || then.length === 0 || then.includes(UNKNOWN_VALUE)) return false;
  return then.every((v) => now.includes(v));
}

/** One of several values (a set_config that may or may not have run): one value when they agree. */
export function choiceOf(values: readonly string[]): string {
  const all = [...new Set(values.flatMap(expandValue))].sort();
  if (all.includes(UNKNOWN_VALUE)) return UNKNOWN_VALUE;
  return all.length === 1 ? all[0]! : `${CHOICE}${JSON.stringify(all)}`;
}

/** The values a stored value stands for (several for a choice). */
export function expandValue(value: string): string[] {
  return value.startsWith(CHOICE) ? (JSON.parse(value.slice(CHOICE.length)) as string[]) : [value];
}

/** What one statement does to settings and to the transaction, in order. */
export type SettingOp =
  /** `maybe`: the statement may or may not run it (set_config in a SELECT with a WHERE, a CASE ...). */
  | { op: 'set'; name: string; value: string; local: boolean; maybe?: boolean }
  | { op: 'reset'; name: string; local: boolean }
  | { op: 'reset-all' }
  /** Code the gateway cannot see into ran: any watched setting may have changed. */
  | { op: 'unknown' }
  | { op: 'begin' }
  | { op: 'commit' }
  | { op: 'rollback' }
  | { op: 'savepoint'; name: string }
  | { op: 'release'; name: string }
  | { op: 'rollback-to'; name: string };

/** Settings whose value decides what names mean or what the session may do: `unknown` marks these. */
export const WATCHED_SETTINGS = [
  'search_path',
  'role',
  'session_authorization',
  'default_transaction_read_only',
  'transaction_read_only',
] as const;

type StackState = 'set' | 'local' | 'set-local';

interface StackEntry {
  level: number;
  state: StackState;
  prior: string;
  masked?: string;
}

type Transaction = 'idle' | 'implicit' | 'block' | 'failed';

export class SessionSettings {
  private values = new Map<string, string>();
  private stacks = new Map<string, StackEntry[]>();
  /** GUC nest level: 0 outside a transaction, 1 in it, one more per savepoint. */
  private level = 0;
  private savepoints: string[] = [];
  private tx: Transaction = 'idle';

  /** `resetValues`: what each setting is at session start (and what RESET returns to). */
  constructor(private readonly resetValues: ReadonlyMap<string, string> = new Map()) {}

  /** The current value (the reset value when the session never changed it; undefined when not known at all). */
  value(name: string): string | undefined {
    const key = name.toLowerCase();
    return this.values.get(key) ?? this.resetValues.get(key);
  }

  /** Every value the setting may take back to inside the current transaction (current, and the stacked ones). */
  stackedValues(name: string): string[] {
    const key = name.toLowerCase();
    const out = new Set<string>();
    const current = this.value(key);
    if (current !== undefined) out.add(current);
    for (const e of this.stacks.get(key) ?? []) {
      out.add(e.prior);
      if (e.masked !== undefined) out.add(e.masked);
    }
    return [...out].flatMap(expandValue);
  }

  resetValue(name: string): string | undefined {
    return this.resetValues.get(name.toLowerCase());
  }

  get inTransaction(): boolean {
    return this.tx !== 'idle';
  }

  clone(): SessionSettings {
    const copy = new SessionSettings(this.resetValues);
    copy.values = new Map(this.values);
    copy.stacks = new Map([...this.stacks].map(([k, v]) => [k, v.map((e) => ({ ...e }))]));
    copy.level = this.level;
    copy.savepoints = [...this.savepoints];
    copy.tx = this.tx;
    return copy;
  }

  // ---- events -------------------------------------------------------------------------------------

  /** A statement completed successfully. */
  executed(ops: readonly SettingOp[]): void {
    if (this.tx === 'idle') this.startTransaction('implicit');
    for (const op of ops) this.apply(op);
  }

  /**
   * A transaction event the protocol core already knows (begin, commit, rollback, savepoint, release,
   * rollback-to), when it reports them apart from the statements: the same rules as executed([op]).
   */
  transaction(
    op: Extract<SettingOp, { op: 'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollback-to' }>,
  ): void {
    if (this.tx === 'idle' && op.op !== 'commit' && op.op !== 'rollback') this.startTransaction('implicit');
    this.apply(op);
  }

  /** A transaction boundary the session model saw (session/session-model.ts publishes them). */
  transactionEvent(event: { type: string; name?: string }): void {
    switch (event.type) {
      case 'begin':
        if (this.tx === 'idle') this.startTransaction('block');
        else this.tx = 'block';
        return;
      case 'commit':
        if (this.tx !== 'idle') this.endTransaction(true);
        return;
      case 'rollback':
      case 'prepare-transaction':
        if (this.tx !== 'idle') this.endTransaction(false);
        return;
      case 'savepoint':
      case 'release':
      case 'rollback-to':
        if (this.tx !== 'idle') this.apply({ op: event.type, name: event.name ?? '' });
        return;
    }
  }

  /** The server reported an error: the transaction (implicit) ends, or the block fails. */
  error(): void {
    if (this.tx === 'implicit') this.endTransaction(false);
    else if (this.tx === 'block') this.tx = 'failed';
  }

  /** ReadyForQuery: its status is the truth about the transaction. */
  ready(status: 'I' | 'T' | 'E'): void {
    if (status === 'I') {
      if (this.tx === 'implicit') this.endTransaction(true);
      else if (this.tx !== 'idle') this.endUncertain(); // a block ended in a way we did not see
      return;
    }
    if (this.tx === 'idle') this.startTransaction('block');
    this.tx = status === 'E' ? 'failed' : this.tx === 'failed' ? 'failed' : 'block';
  }

  // ---- the server's rules -------------------------------------------------------------------------

  private apply(op: SettingOp): void {
    switch (op.op) {
      case 'set': {
        const prior = this.currentOrDefault(op.name.toLowerCase());
        this.assign(op.name, op.maybe ? choiceOf([prior, op.value]) : op.value, op.local);
        return;
      }
      case 'reset':
        this.assign(op.name, this.resetValues.get(op.name.toLowerCase()), op.local);
        return;
      case 'reset-all':
        for (const name of new Set([...this.values.keys(), ...this.resetValues.keys()]))
          this.assign(name, this.resetValues.get(name), false);
        return;
      case 'unknown':
        for (const name of WATCHED_SETTINGS) this.assign(name, UNKNOWN_VALUE, false);
        return;
      case 'begin':
        if (this.tx === 'implicit') this.tx = 'block';
        return;
      case 'commit':
        this.endTransaction(this.tx !== 'failed');
        return;
      case 'rollback':
        this.endTransaction(false);
        return;
      case 'savepoint':
        this.level++;
        this.savepoints.push(op.name);
        return;
      case 'release': {
        const target = this.savepointLevel(op.name);
        if (target === undefined) return;
        for (let l = this.level; l >= target; l--) this.atEndOfLevel(true, l);
        this.savepoints.length = target - 2;
        this.level = target - 1;
        return;
      }
      case 'rollback-to': {
        const target = this.savepointLevel(op.name);
        if (target === undefined) return;
        for (let l = this.level; l >= target; l--) this.atEndOfLevel(false, l);
        // The savepoint itself stays, as a fresh level.
        this.savepoints.length = target - 1;
        this.level = target;
        if (this.tx === 'failed') this.tx = 'block';
        return;
      }
    }
  }

  /** Level of the newest savepoint of that name (savepoint i is level i + 2). */
  private savepointLevel(name: string): number | undefined {
    const index = this.savepoints.lastIndexOf(name);
    return index < 0 ? undefined : index + 2;
  }

  private startTransaction(kind: Transaction): void {
    this.level = 1;
    this.savepoints = [];
    this.tx = kind;
  }

  private endTransaction(commit: boolean): void {
    for (let l = this.level; l >= 1; l--) this.atEndOfLevel(commit, l);
    this.level = 0;
    this.savepoints = [];
    this.tx = 'idle';
  }

  /** The transaction ended without our seeing how: a value is known only if commit and abort agree. */
  private endUncertain(): void {
    const committed = this.clone();
    committed.endTransaction(true);
    this.endTransaction(false);
    for (const name of new Set([...committed.values.keys(), ...this.values.keys()])) {
      if (committed.value(name) !== this.value(name)) this.values.set(name, UNKNOWN_VALUE);
    }
  }

  /** SET / SET LOCAL / RESET: push_old_value, then the new value (undefined = back to the server default). */
  private assign(name: string, value: string | undefined, local: boolean): void {
    const key = name.toLowerCase();
    this.pushOld(key, local ? 'local' : 'set');
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
  }

  private currentOrDefault(name: string): string {
    return this.values.get(name) ?? this.resetValues.get(name) ?? UNKNOWN_VALUE;
  }

  private pushOld(name: string, action: 'set' | 'local'): void {
    if (this.level === 0) return;
    const stack = this.stacks.get(name) ?? [];
    const top = stack[stack.length - 1];
    if (top && top.level >= this.level) {
      if (action === 'set') {
        top.state = 'set';
        top.masked = undefined;
      } else if (top.state === 'set') {
        top.masked = this.currentOrDefault(name);
        top.state = 'set-local';
      }
      return;
    }
    stack.push({ level: this.level, state: action, prior: this.currentOrDefault(name) });
    this.stacks.set(name, stack);
  }

  /** AtEOXact_GUC(isCommit, level) for every setting. */
  private atEndOfLevel(commit: boolean, level: number): void {
    for (const [name, stack] of this.stacks) {
      for (let top = stack[stack.length - 1]; top && top.level >= level; top = stack[stack.length - 1]) {
        const prev = stack[stack.length - 2];
        let restore: string | undefined;
        if (!commit) restore = top.prior;
        else if (top.level === 1) {
          if (top.state === 'set-local') restore = top.masked;
          else if (top.state === 'local') restore = top.prior;
        } else if (!prev || prev.level < top.level - 1) {
          top.level--;
          break;
        } else if (top.state === 'set') {
          prev.state = 'set';
          prev.masked = undefined;
        } else if (top.state === 'local') {
          if (prev.state === 'set') {
            prev.masked = top.prior;
            prev.state = 'set-local';
          }
        } else {
          prev.masked = top.masked;
          prev.state = 'set-local';
        }
        if (restore !== undefined) this.restore(name, restore);
        stack.pop();
      }
      if (stack.length === 0) this.stacks.delete(name);
    }
  }

  private restore(name: string, value: string): void {
    if (value === UNKNOWN_VALUE && this.resetValues.get(name) === undefined) this.values.set(name, value);
    else if (value === this.resetValues.get(name)) this.values.delete(name);
    else this.values.set(name, value);
  }
}

/**
 * Settings a statement may see. Exact (one model) when nothing is in flight; when earlier statements are
 * still running (a pipelining client), each watched setting may hold any value those statements could
 * leave behind, whichever of them succeed or fail.
 */
export class SettingsView {
  private constructor(
    private readonly exact: SessionSettings | undefined,
    private readonly wide: Map<string, Set<string>>,
  ) {}

  static of(confirmed: SessionSettings, pending: readonly (readonly SettingOp[])[]): SettingsView {
    if (pending.length === 0) return new SettingsView(confirmed.clone(), new Map());
    const wide = new Map<string, Set<string>>();
    const names = new Set<string>(WATCHED_SETTINGS);
    for (const ops of pending)
      for (const op of ops) if (op.op === 'set' || op.op === 'reset') names.add(op.name.toLowerCase());
    for (const name of names) {
      const values = new Set(confirmed.stackedValues(name));
      for (const ops of pending) for (const op of ops) addOutcome(values, op, name, confirmed);
      wide.set(name, values);
    }
    return new SettingsView(undefined, wide);
  }

  /** The values a setting may have (UNKNOWN_VALUE among them when it could be anything). */
  values(name: string): string[] {
    const key = name.toLowerCase();
    if (this.exact) {
      const v = this.exact.value(key);
      return v === undefined ? [] : expandValue(v);
    }
    const wide = this.wide.get(key);
    return wide ? [...new Set([...wide].flatMap(expandValue))] : [UNKNOWN_VALUE];
  }

  /** The statement before this one in the same message succeeded: apply its effects. */
  apply(ops: readonly SettingOp[], confirmed: SessionSettings): void {
    if (this.exact) {
      this.exact.executed(ops);
      return;
    }
    for (const op of ops) {
      if (op.op === 'set' || op.op === 'reset') {
        const values =
          op.op === 'set' && op.maybe ? new Set(this.wide.get(op.name.toLowerCase())) : new Set<string>();
        addOutcome(values, op, op.name, confirmed);
        this.wide.set(op.name.toLowerCase(), values);
      } else if (op.op === 'reset-all' || op.op === 'unknown') {
        for (const [name, set] of this.wide) {
          set.clear();
          addOutcome(set, op, name, confirmed);
        }
      } else if (op.op !== 'begin' && op.op !== 'savepoint') {
        // A transaction end or savepoint rollback restores a value this view already holds (or the
        // confirmed stack's): widen to all of them.
        for (const [name, set] of this.wide) for (const v of confirmed.stackedValues(name)) set.add(v);
      }
    }
  }
}

function addOutcome(values: Set<string>, op: SettingOp, name: string, confirmed: SessionSettings): void {
  const key = name.toLowerCase();
  const reset = confirmed.resetValue(key) ?? UNKNOWN_VALUE;
  switch (op.op) {
    case 'set':
      if (op.name.toLowerCase() === key) values.add(op.value);
      return;
    case 'reset':
      if (op.name.toLowerCase() === key) values.add(reset);
      return;
    case 'reset-all':
      values.add(reset);
      return;
    case 'unknown':
      if ((WATCHED_SETTINGS as readonly string[]).includes(key)) values.add(UNKNOWN_VALUE);
      return;
    default:
      return;
  }
}

/** The server's parse_bool: true/false, yes/no, on/off (and unique prefixes), 1/0; undefined otherwise. */
export function parseBoolean(text: string): boolean | undefined {
  const v = text.trim().toLowerCase();
  if (v === '') return undefined;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === 'on' || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || v === 'of' || v === 'off' || v === '0') return false;
  return undefined;
}

/** A setting's value written as a string (set_config, a startup parameter, SHOW) in the model's form. */
export function normalizeSettingValue(name: string, value: string): string {
  if (name.toLowerCase() !== 'search_path') return value;
  const names = splitIdentifierList(value);
  return names ? joinIdentifierList(names) : value;
}
