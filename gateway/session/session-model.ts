/**
 * The one model of what a PostgreSQL session holds by name — prepared statements and portals (SQL's
 * cursors) — and of its transaction, updated by SQL (PREPARE, DEALLOCATE, DECLARE, CLOSE, DISCARD ALL,
 * BEGIN ... COMMIT, savepoints) and by the protocol (Parse, Bind, Close, Sync) alike.
 *
 * Two layers:
 * - the **confirmed** state changes only on the server's replies, applied in order (ParseComplete,
 *   BindComplete, CloseComplete, CommandComplete, ErrorResponse, ReadyForQuery). A PREPARE or Parse
 *   that failed created nothing; a transaction's end drops its portals except committed WITH HOLD
 *   cursors; ROLLBACK TO drops the portals of the savepoints it undoes; COMMIT of a failed transaction
 *   is a rollback; an error ends an implicit transaction; DISCARD ALL drops everything.
 * - **in-flight** effects: what forwarded messages will do if they succeed, not yet answered. A lookup
 *   (`view(group).statement(name)`) folds them over the confirmed state. Messages of the same
 *   pipeline segment (up to Sync) as the use are certain — if one fails, the server skips the use too;
 *   earlier segments still in flight may have succeeded or not, so both outcomes stay possible. A name
 *   with more than one possible definition is `unknown`, and the relay refuses any use of it.
 *
 * Transaction events (begin, commit, rollback, savepoint, release, rollback-to) are published, from
 * the server's replies, to subscribers such as a settings tracker (SET LOCAL ends with its transaction;
 * SET in a rolled-back transaction is undone): `onTransaction(listener)`. Implicit transactions (one
 * simple Query, or the messages up to Sync, outside BEGIN) are reported with `implicit: true`.
 */
import type { NameView, PortalDef, Resolution, StatementDef } from '../contracts/names.js';
import type { TransactionEvent } from '../sql/session-sql.js';

export type { TransactionEvent } from '../sql/session-sql.js';

/** What a forwarded message (or one statement of it) does if it succeeds. */
export type Effect =
  /** Parse / PREPARE. `unnamed`: the unnamed statement is replaced, and dropped even when the Parse fails. */
  | { on: 'statement'; op: 'define'; name: string; def: StatementDef }
  | { on: 'statement'; op: 'drop'; name: string }
  /** DEALLOCATE ALL: every named statement (not the unnamed one). */
  | { on: 'statement'; op: 'drop-all' }
  /** Bind / DECLARE. */
  | { on: 'portal'; op: 'define'; name: string; def: PortalDef }
  | { on: 'portal'; op: 'drop'; name: string }
  /** CLOSE ALL. */
  | { on: 'portal'; op: 'drop-all' }
  /** DISCARD ALL. */
  | { on: 'all'; op: 'drop-all' }
  /** A simple Query drops the unnamed statement and the unnamed portal when it starts. */
  | { on: 'unnamed'; op: 'drop' }
  | { on: 'transaction'; event: TransactionEvent };

export type Outcome = 'ok' | 'failed' | 'skipped';

/** An effect in flight: `group` is the pipeline segment (between Syncs) of the message that carries it. */
export interface InFlight {
  effect: Effect;
  group: number;
  settled: boolean;
  /** Order of sending: lanes are sorted by it. */
  seq: number;
}

export type TransactionListener = (event: TransactionEvent & { implicit?: boolean }) => void;

/** A portal as the server holds it: its definition and when it was made. */
interface HeldPortal {
  def: PortalDef;
  /** The transaction that made it; 0 once a WITH HOLD cursor's transaction committed. */
  txn: number;
  /** The savepoint level it was made in (0 = the transaction itself). */
  subxact: number;
}

const ABSENT = null;
type Possible<T> = Set<T | null>;

export class SessionModel {
  private readonly statements = new Map<string, StatementDef>();
  private readonly portals = new Map<string, HeldPortal>();
  /**
   * In-flight effects, indexed so a lookup reads only those that can touch its name: one lane per
   * name (defines and drops; a Query's unnamed drop is in the lanes of '') and one per namespace for
   * effects on every name (DEALLOCATE ALL, CLOSE ALL, DISCARD ALL, transaction ends). A pipeline of
   * thousands of Bind/Execute without Sync costs each lookup a few entries, not all of them.
   */
  private readonly lanes = new Map<string, Lane>();
  private readonly statementWide = new Lane();
  private readonly portalWide = new Lane();
  private unsettled = 0;
  private nextSeq = 1;
  /** Transaction counter: a portal belongs to the transaction current when it was made. */
  private txn = 1;
  private savepoints: { name: string; id: number }[] = [];
  private nextSubxact = 1;
  /** An error happened in the current transaction (an implicit one aborts; a block waits for ROLLBACK). */
  private txnFailed = false;
  private inBlock = false;
  private readonly listeners: TransactionListener[] = [];
  private nextId = 1;

  /** A fresh definition id (definitions are compared by id: same id, same text). */
  id(): number {
    return this.nextId++;
  }

  onTransaction(listener: TransactionListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  // ---- in flight -----------------------------------------------------------------------------------

  /** A forwarded message will do this if it succeeds; settle() it when the server answers. */
  expect(effect: Effect, group: number): InFlight {
    const entry: InFlight = { effect, group, settled: false, seq: this.nextSeq++ };
    for (const lane of this.lanesOf(effect)) lane.push(entry);
    this.unsettled++;
    return entry;
  }

  /** The server answered the message carrying `entry`. */
  settle(entry: InFlight, outcome: Outcome, tag?: string): void {
    if (entry.settled) return;
    entry.settled = true;
    this.unsettled--;
    if (outcome === 'ok') this.apply(entry.effect, tag);
    else if (outcome === 'failed') this.applyFailure(entry.effect);
    for (const lane of this.lanesOf(entry.effect)) {
      lane.trim();
      if (lane.empty && lane.key) this.lanes.delete(lane.key);
    }
  }

  /** The lanes an effect is filed in: those of the lookups it can change. */
  private lanesOf(effect: Effect): Lane[] {
    switch (effect.on) {
      case 'transaction':
        return [this.portalWide];
      case 'all':
        return [this.statementWide, this.portalWide];
      case 'unnamed':
        return [this.lane('statement', ''), this.lane('portal', '')];
      default:
        if (effect.op === 'drop-all')
          return [effect.on === 'statement' ? this.statementWide : this.portalWide];
        return [this.lane(effect.on, effect.name)];
    }
  }

  private lane(space: 'statement' | 'portal', name: string): Lane {
    const key = `${space}:${name}`;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = new Lane(key);
      this.lanes.set(key, lane);
    }
    return lane;
  }

  /** The names as a message of pipeline segment `group` will find them when it runs. */
  view(group: number): NameView {
    return {
      statement: (name) => this.resolve('statement', name, group) as Resolution<StatementDef>,
      portal: (name) => this.resolve('portal', name, group) as Resolution<PortalDef>,
    };
  }

  private resolve(space: 'statement' | 'portal', name: string, group: number) {
    const confirmed = space === 'statement' ? this.statements.get(name) : this.portals.get(name)?.def;
    let possible: Possible<StatementDef | PortalDef> = new Set([confirmed ?? ABSENT]);
    for (const entry of this.relevant(space, name, group)) {
      possible = step(possible, entry.effect, space, name, entry.group === group);
    }
    const defs = [...possible].filter((d) => d !== ABSENT);
    if (defs.length === 0) return { state: 'absent' };
    const first = defs[0]!;
    if (defs.every((d) => sameDefinition(d, first))) return { state: 'known', def: first };
    return { state: 'unknown' };
  }

  /**
   * The unsettled effects that can change `name`, in sending order, from the last one of the use's own
   * segment that sets it whatever came before (a Bind of the unnamed portal, a drop): the segment is
   * the newest, so its entries end both lanes, and what precedes such a reset cannot matter.
   */
  private relevant(space: 'statement' | 'portal', name: string, group: number): InFlight[] {
    const own = this.lanes.get(`${space}:${name}`);
    // DEALLOCATE ALL and DISCARD ALL leave the unnamed statement alone.
    const wide = space === 'portal' ? this.portalWide : name === '' ? undefined : this.statementWide;
    // A drop, or a define of the unnamed one (it replaces whatever was there) — not a Query's drop
    // of the unnamed ones, which only adds "absent"; in the wide lanes, everything but a transaction's
    // end (which may drop a portal, or not).
    const ownReset =
      own?.lastReset(group, 0, (e) => e.on !== 'unnamed' && 'op' in e && (e.op === 'drop' || name === '')) ??
      0;
    const wideReset = wide?.lastReset(group, ownReset, (e) => e.on !== 'transaction') ?? 0;
    const from = Math.max(ownReset, wideReset);
    return mergeBySeq(own?.since(from), wide?.since(from));
  }

  // ---- confirmed -----------------------------------------------------------------------------------

  private apply(effect: Effect, tag?: string): void {
    switch (effect.on) {
      case 'statement':
        if (effect.op === 'define') this.statements.set(effect.name, effect.def);
        else if (effect.op === 'drop') this.statements.delete(effect.name);
        else for (const name of [...this.statements.keys()]) if (name !== '') this.statements.delete(name);
        return;
      case 'portal':
        if (effect.op === 'define') this.portals.set(effect.name, this.held(effect.def));
        else if (effect.op === 'drop') this.portals.delete(effect.name);
        else this.portals.clear();
        return;
      case 'all':
        for (const name of [...this.statements.keys()]) if (name !== '') this.statements.delete(name);
        this.portals.clear();
        return;
      case 'unnamed':
        this.statements.delete('');
        this.portals.delete('');
        return;
      case 'transaction':
        this.transactionEvent(effect.event, tag);
        return;
    }
  }

  private applyFailure(effect: Effect): void {
    // A processed Parse of the unnamed statement drops the old one before it fails; a failed Bind
    // aborts the transaction the unnamed portal belongs to.
    if (effect.on === 'statement' && effect.op === 'define' && effect.name === '') this.statements.delete('');
    if (effect.on === 'portal' && effect.op === 'define' && effect.name === '') this.portals.delete('');
    if (effect.on === 'unnamed') this.apply(effect);
  }

  private held(def: PortalDef): HeldPortal {
    return { def, txn: this.txn, subxact: this.savepoints.at(-1)?.id ?? 0 };
  }

  /** An ErrorResponse: the current transaction failed. */
  error(): void {
    this.txnFailed = true;
  }

  /** ReadyForQuery: outside a block, the implicit transaction (if any) has ended. */
  ready(status: 'I' | 'T' | 'E'): void {
    if (status === 'I') {
      if (this.inBlock) this.inBlock = false;
      this.endTransaction(!this.txnFailed, true);
    } else this.inBlock = true;
  }

  private transactionEvent(event: TransactionEvent, tag?: string): void {
    switch (event.type) {
      case 'begin':
        this.inBlock = true;
        this.emit(event);
        return;
      case 'commit':
        // COMMIT of a failed transaction answers ROLLBACK, and is one.
        this.endTransaction(tag !== 'ROLLBACK' && !this.txnFailed, false, event.chain);
        return;
      case 'rollback':
        this.endTransaction(false, false, event.chain);
        return;
      case 'prepare-transaction':
        this.endTransaction(false, false);
        return;
      case 'savepoint':
        this.savepoints.push({ name: event.name, id: this.nextSubxact++ });
        this.emit(event);
        return;
      case 'release': {
        const at = this.savepointIndex(event.name);
        if (at < 0) return;
        const parent = at > 0 ? this.savepoints[at - 1]!.id : 0;
        const released = this.savepoints[at]!.id;
        for (const p of this.portals.values())
          if (p.txn === this.txn && p.subxact >= released) p.subxact = parent;
        this.savepoints.length = at;
        this.emit(event);
        return;
      }
      case 'rollback-to': {
        const at = this.savepointIndex(event.name);
        if (at < 0) return;
        const undone = this.savepoints[at]!.id;
        for (const [name, p] of this.portals)
          if (p.txn === this.txn && p.subxact >= undone) this.portals.delete(name);
        this.savepoints.length = at + 1;
        this.txnFailed = false;
        this.emit(event);
        return;
      }
    }
  }

  private savepointIndex(name: string): number {
    for (let i = this.savepoints.length - 1; i >= 0; i--) if (this.savepoints[i]!.name === name) return i;
    return -1;
  }

  /** The current transaction ends: committed WITH HOLD cursors stay; every other portal it made goes. */
  private endTransaction(committed: boolean, implicit: boolean, chain = false): void {
    for (const [name, p] of this.portals) {
      if (p.txn !== this.txn) continue;
      if (committed && p.def.hold) p.txn = 0;
      else this.portals.delete(name);
    }
    this.txn++;
    this.savepoints = [];
    this.txnFailed = false;
    this.inBlock = chain;
    // Every ReadyForQuery outside a block ends an implicit transaction (possibly an empty one).
    this.emit(committed ? { type: 'commit', implicit } : { type: 'rollback', implicit });
    if (chain) this.emit({ type: 'begin' });
  }

  private emit(event: TransactionEvent & { implicit?: boolean }): void {
    for (const listener of this.listeners) listener(event);
  }

  // ---- inspection (tests, diagnostics) -------------------------------------------------------------

  /** The confirmed named objects: what the server holds now, if every reply so far was applied. */
  snapshot(): { statements: Map<string, StatementDef>; portals: Map<string, PortalDef> } {
    return {
      statements: new Map(this.statements),
      portals: new Map([...this.portals].map(([name, p]) => [name, p.def])),
    };
  }

  /** Effects forwarded and not yet answered. */
  get pending(): number {
    return this.unsettled;
  }
}

/** In-flight entries filed under one name (or namespace), in sending order; settled ones leave from the front. */
class Lane {
  private items: InFlight[] = [];
  private head = 0;

  /** `key`: the name's lane in the model's map; none for the namespace-wide lanes. */
  constructor(readonly key?: string) {}

  get empty(): boolean {
    return this.head === this.items.length;
  }

  push(entry: InFlight): void {
    this.items.push(entry);
  }

  /** Drop settled entries from the front (the server answers in order, so they are almost always there). */
  trim(): void {
    while (this.head < this.items.length && this.items[this.head]!.settled) this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Seq of the last unsettled entry of segment `group` after `after` that `resets` the name; 0 if none. */
  lastReset(group: number, after: number, resets: (effect: Effect) => boolean): number {
    for (let i = this.items.length - 1; i >= this.head; i--) {
      const entry = this.items[i]!;
      if (entry.group !== group || entry.seq <= after) return 0;
      if (!entry.settled && resets(entry.effect)) return entry.seq;
    }
    return 0;
  }

  /** Unsettled entries with seq >= `from`, in order. */
  since(from: number): InFlight[] {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid]!.seq < from) lo = mid + 1;
      else hi = mid;
    }
    const out: InFlight[] = [];
    for (let i = lo; i < this.items.length; i++) if (!this.items[i]!.settled) out.push(this.items[i]!);
    return out;
  }
}

/**
 * Two definitions the gate cannot tell apart: the same text and everything else it judges, records or
 * hashes for an approval — a Parse's parameter types; a Bind's values, formats, search_paths and the
 * statement it bound. Pipelined clients re-Parse the unnamed statement with the same text in every
 * segment, so equal text alone must stay "known" only when nothing else differs: a portal bound twice
 * with other values (the first Bind made to fail) would be judged, and approved, with the wrong ones.
 */
export function sameDefinition(a: StatementDef | PortalDef, b: StatementDef | PortalDef): boolean {
  if (a === b || a.id === b.id) return true;
  if (a.text !== b.text || a.origin !== b.origin) return false;
  if (!('resultFormats' in a) || !('resultFormats' in b)) {
    const types = (d: StatementDef | PortalDef) => ('resultFormats' in d ? undefined : d.parameterTypes);
    return sameList(types(a), types(b));
  }
  return (
    a.hold === b.hold &&
    sameList(a.parameterFormats, b.parameterFormats) &&
    sameList(a.resultFormats, b.resultFormats) &&
    sameList(a.searchPaths, b.searchPaths) &&
    sameValues(a.parameters, b.parameters) &&
    (a.statement === b.statement ||
      (a.statement !== undefined && b.statement !== undefined && sameDefinition(a.statement, b.statement)))
  );
}

const sameList = <T>(a: readonly T[] = [], b: readonly T[] = []) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

const sameValues = (a: readonly (Buffer | null)[] = [], b: readonly (Buffer | null)[] = []) =>
  a.length === b.length &&
  a.every((v, i) => {
    const w = b[i];
    return v === null || w === null || w === undefined ? v === w : v.equals(w);
  });

function mergeBySeq(a: InFlight[] = [], b: InFlight[] = []): InFlight[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: InFlight[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]!.seq < b[j]!.seq)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}

/** Fold one in-flight effect over a name's possible definitions (`certain`: it succeeded if the use runs). */
export function step<T>(
  possible: Possible<T>,
  effect: Effect,
  space: 'statement' | 'portal',
  name: string,
  certain: boolean,
): Possible<T> {
  const result = (after: Possible<T>) => (certain ? after : new Set([...possible, ...after]));
  switch (effect.on) {
    case 'transaction':
      // A transaction's end may drop a portal; it never gives a name another definition.
      return space === 'portal' ? new Set([...possible, ABSENT]) : possible;
    case 'unnamed':
      return name === '' ? new Set([...possible, ABSENT]) : possible;
    case 'all':
      return name === '' && space === 'statement' ? possible : result(new Set([ABSENT]));
    default:
      break;
  }
  if (effect.on !== space) return possible;
  if (effect.op === 'drop-all')
    return space === 'statement' && name === '' ? possible : result(new Set([ABSENT]));
  if (effect.name !== name) return possible;
  if (effect.op === 'drop') return result(new Set([ABSENT]));
  const def = effect.def as unknown as T;
  if (name === '') {
    // The unnamed statement and portal are replaced; a failed Parse/Bind leaves nothing.
    return certain ? new Set([def]) : new Set([...possible, def, ABSENT]);
  }
  // A named one is created only if the name is free; otherwise the message fails.
  if (!possible.has(ABSENT)) return possible;
  return certain ? new Set([def]) : new Set([...possible, def]);
}
