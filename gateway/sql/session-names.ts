/**
 * One session's names: the settings model (settings.ts) fed by the server's answers, the statements in
 * flight and what they will change, the temporary relations the session holds, and resolution of each
 * message through them (resolve.ts). Pure apart from asking a catalog source for a snapshot (the slow
 * path: once per catalog version, only when the decision depends on names).
 *
 * Events, in the order the server produced them:
 * - `forwarded(ids, effects)` when statements go to the server (ids as the gate made them);
 * - `completed(id, outcome)` when each finishes (ok, failed or skipped);
 * - `transaction(event)` for every transaction boundary the session model (session/session-model.ts)
 *   publishes from the server's replies: the one model of the session's transaction.
 */
import type { Classification } from '../../src/shared/statement.js';
import { type ResolvedMessage, resolveMessage, type StatementEffects } from './resolve.js';
import type { NameLookup } from './search-path.js';
import type { TransactionEvent } from './session-sql.js';
import { expandValue, SessionSettings, type SettingOp, SettingsView, UNKNOWN_VALUE } from './settings.js';
import { syntaxExtrasOf } from './syntax.js';

/** What the session's upstream connection said at start (SHOW after login, before the client's first message). */
export interface SessionStart {
  /** Each watched setting's value at start: what RESET returns to (role and database defaults, startup parameters). */
  resetValues: ReadonlyMap<string, string>;
  /** current_user at start: `$user`. */
  user: string;
  /** Settings the gateway holds for this session and refuses to let the client change. */
  held?: ReadonlyMap<string, string>;
}

/** Where snapshots of the catalog come from (gateway/catalog implements it). */
export interface LookupSource {
  get(): Promise<NameLookup>;
  peek?(): NameLookup | undefined;
  refreshIfOlder?(ms: number): Promise<NameLookup>;
}

/**
 * A name missing from a snapshot older than this reloads the snapshot once (it may have been created
 * since, around the gateway; DDL through the gateway reloads it anyway). Bounds reloads to one per
 * interval per connection however many statements name things that do not exist.
 */
const MISSING_RELOAD_MS = 10_000;

const TRANSACTION_OPS = new Set(['begin', 'commit', 'rollback', 'savepoint', 'release', 'rollback-to']);

export type Outcome = { ok: true } | { ok: false; skipped: boolean };

/** No statement of the message touches settings or the transaction (its resolution can be reused). */
function changesNothing(classification: Classification): boolean {
  if (!classification.ok) return true;
  return classification.statements.every((s) => {
    const extras = syntaxExtrasOf(s);
    return extras !== undefined && extras.settingOps.length === 0 && !extras.dynamicSetting;
  });
}

export class SessionNames {
  readonly settings: SessionSettings;
  private readonly pending = new Map<string, StatementEffects>();
  private readonly temp = new Set<string>();
  private opaqueTemp = false;
  /** The last resolution of each (cached, shared) syntax result, and what it depended on. */
  private readonly memo = new WeakMap<
    Classification,
    { key: string; lookup: NameLookup | undefined; result: ResolvedMessage }
  >();

  constructor(readonly start: SessionStart) {
    this.settings = new SessionSettings(start.resetValues);
  }

  get held(): ReadonlyMap<string, string> {
    return this.start.held ?? new Map();
  }

  /**
   * search_path as the next message starts under, when it is one known value: undefined while
   * statements in flight may change it, or after code the gateway cannot follow set it.
   */
  searchPath(): string | undefined {
    const values = this.searchPaths();
    return values.length === 1 && values[0] !== UNKNOWN_VALUE ? values[0] : undefined;
  }

  /** Every value search_path may have as the next message starts (UNKNOWN_VALUE if it could be anything). */
  searchPaths(): string[] {
    // Asked at every Bind and Execute: with nothing in flight, the confirmed value, without a view.
    if (this.pending.size === 0) {
      const value = this.settings.value('search_path');
      return value === undefined ? [] : expandValue(value);
    }
    const pending = [...this.pending.values()].map((e) => e.settingOps);
    return SettingsView.of(this.settings, pending).values('search_path');
  }

  /** Resolve a message against the session's settings; `lookup` undefined resolves textually. */
  resolveWith(classification: Classification, lookup: NameLookup | undefined): ResolvedMessage {
    // The hot path repeats statements: with nothing in flight, the same text under the same settings
    // and catalog resolves the same way.
    const key =
      this.pending.size === 0 && changesNothing(classification)
        ? `${this.settings.value('search_path')}\u0001${this.settings.value('role')}\u0001${this.settings.value('session_authorization')}\u0001${[...this.temp].join(',')}\u0001${this.opaqueTemp}`
        : undefined;
    const memo = key === undefined ? undefined : this.memo.get(classification);
    if (memo && memo.key === key && memo.lookup === lookup) return memo.result;
    const result = this.resolveUncached(classification, lookup);
    if (key !== undefined) this.memo.set(classification, { key, lookup, result });
    return result;
  }

  private resolveUncached(classification: Classification, lookup: NameLookup | undefined): ResolvedMessage {
    return resolveMessage(classification, {
      lookup,
      settings: this.settings,
      pending: [...this.pending.values()].map((e) => e.settingOps),
      loginUser: this.start.user,
      tempRelations: this.temp,
      opaqueTemp: this.opaqueTemp,
      held: this.start.held,
    });
  }

  /**
   * Resolve a message, through the catalog when `needCatalog` says the decision depends on it. Returns
   * synchronously when no catalog is needed or a fresh snapshot is at hand.
   */
  resolve(
    classification: Classification,
    source: LookupSource | undefined,
    needCatalog: boolean,
  ): ResolvedMessage | Promise<ResolvedMessage> {
    if (!needCatalog || !source || !classification.ok) return this.resolveWith(classification, undefined);
    const current = source.peek?.();
    if (current) {
      const resolved = this.resolveWith(classification, current);
      if (!resolved.missing || !source.refreshIfOlder) return resolved;
      return source
        .refreshIfOlder(MISSING_RELOAD_MS)
        .then((fresh) => this.resolveWith(classification, fresh));
    }
    return source.get().then(async (lookup) => {
      const resolved = this.resolveWith(classification, lookup);
      if (!resolved.missing || !source.refreshIfOlder) return resolved;
      return this.resolveWith(classification, await source.refreshIfOlder(MISSING_RELOAD_MS));
    });
  }

  /** Statements went to the server: their effects are in flight until they complete. */
  forwarded(ids: readonly string[], effects: readonly StatementEffects[]): void {
    ids.forEach((id, i) => {
      const effect = effects[i] ?? { settingOps: [], createsTemp: [], discardsTemp: false };
      this.pending.set(id, effect);
      // Learnt at once: a pipelined statement behind the CREATE may already use the name.
      for (const name of effect.createsTemp) this.temp.add(name);
    });
  }

  completed(id: string, outcome: Outcome): void {
    const effect = this.pending.get(id);
    this.pending.delete(id);
    if (!outcome.ok) return; // a failure's ErrorResponse follows as error(); a skipped statement never ran
    // Transaction boundaries come from the session model (transaction()), not from the statement.
    const ops: readonly SettingOp[] = (effect?.settingOps ?? []).filter((op) => !TRANSACTION_OPS.has(op.op));
    this.settings.executed(ops);
    if (ops.some((op) => op.op === 'unknown')) this.opaqueTemp = true;
    if (effect?.discardsTemp) this.temp.clear();
  }

  /** A transaction boundary, from the session model. */
  transaction(event: TransactionEvent): void {
    this.settings.transactionEvent(event);
  }
}
