/**
 * Check: names. What a message's relations and functions mean, as the server will resolve them: the
 * session's settings (search_path, role — the settings model follows the server's answers and the
 * session model's transaction events), its temporary relations, and the connection's catalog when the
 * decision depends on it (the only async step: a catalog load). Also the settings the gateway holds
 * for the session (a read-only session's default_transaction_read_only): a statement that would change
 * them is refused, whatever policy says.
 */
import type { Classification, Decision } from '../../../src/shared/statement.js';
import type { SessionInfo } from '../../contracts/session.js';
import { type CatalogNeed, type PolicyEngine, WRITING_CLASSES } from '../../policy/engine.js';
import type { StatementEffects } from '../../sql/resolve.js';
import { type LookupSource, SessionNames, type SessionStart } from '../../sql/session-names.js';
import { keepDefinitionRun } from '../../sql/session-sql.js';
import type { TransactionListener } from '../session-model.js';

/** Classes a read-only session cannot run (policy/engine.ts WRITING_CLASSES). */
const WRITING = new Set<string>(WRITING_CLASSES);

/** A message's classification with its names resolved, and what each statement does to the session. */
export interface Named {
  classification: Classification;
  effects: StatementEffects[];
}

export interface NamesDeps {
  engine: PolicyEngine;
  /** The session's starting settings and its transaction events (session.ts). */
  session?: { start: SessionStart; onTransaction(listener: TransactionListener): void };
  /** The connection's catalog (without it, names resolve textually). */
  catalog?: LookupSource & { invalidate?(): void };
  /** Identities with masking rules read the catalog anyway: resolve through it too. */
  masking: boolean;
}

export class NamesCheck {
  private readonly names: SessionNames;
  private readonly needs = new Map<string, CatalogNeed>();
  /** DDL statements in flight: when one finishes, the catalog is reloaded. */
  private readonly ddlInFlight = new Set<string>();

  constructor(
    private readonly info: SessionInfo,
    private readonly deps: NamesDeps,
  ) {
    this.names = new SessionNames(
      deps.session?.start ?? {
        resetValues: new Map([['search_path', '"$user", public']]),
        user: info.connection.user,
      },
    );
    deps.session?.onTransaction((event) => this.names.transaction(event));
  }

  /** Resolve the names of a message whose prepared-statement and cursor uses are already resolved. */
  resolve(classification: Classification, grants: readonly string[]): Named | Promise<Named> {
    const statements = classification.ok ? classification.statements : [];
    const need = this.need(grants);
    const needCatalog =
      this.deps.masking ||
      statements.some(
        (s) =>
          (need.names && (s.relations.length > 0 || s.functions.length > 0)) ||
          (need.functions && s.functions.length > 0),
      );
    const named = this.names.resolve(classification, this.deps.catalog, needCatalog);
    return named instanceof Promise
      ? named.then((n) => linked(classification, n))
      : linked(classification, named);
  }

  /** The session's search_path as the next message starts under, when known exactly (approvals record it). */
  searchPath(): string | undefined {
    return this.names.searchPath();
  }

  /** Every value the session's search_path may have as the next message starts. */
  searchPaths(): string[] {
    return this.names.searchPaths();
  }

  /** A read-only session may not change the settings the gateway holds, nor (after a grant) write. */
  heldRefusal(named: Named): Decision | undefined {
    const index = named.effects.findIndex((e) => e.heldViolation);
    if (index >= 0) {
      return {
        action: 'deny',
        policy: null,
        rule: 'read-only-session',
        reason: named.effects[index]!.heldViolation!,
      };
    }
    // A grant since the session started may allow writes; the session stays read-only upstream.
    if (!this.names.held.has('default_transaction_read_only') || !named.classification.ok) return undefined;
    const writes = named.classification.statements.some((s) =>
      [s.class, ...(s.alsoClasses ?? [])].some((c) => WRITING.has(c)),
    );
    if (!writes) return undefined;
    return {
      action: 'deny',
      policy: null,
      rule: 'read-only-session',
      reason: 'this session started read-only (no write permission then): reconnect to write',
    };
  }

  /** The statements went to the server with these record ids: their effects are in flight. */
  forwarded(ids: readonly string[], named: Named): void {
    this.names.forwarded(ids, named.effects);
    if (!named.classification.ok) return;
    named.classification.statements.forEach((s, i) => {
      const id = ids[i];
      if (id !== undefined && (s.class === 'ddl' || s.alsoClasses?.includes('ddl'))) this.ddlInFlight.add(id);
    });
  }

  /** A forwarded statement finished: its settings take effect (or not), DDL reloads the catalog. */
  completed(id: string, failed: boolean, skipped: boolean): void {
    this.names.completed(id, failed || skipped ? { ok: false, skipped } : { ok: true });
    if (this.ddlInFlight.delete(id) && !skipped) this.deps.catalog?.invalidate?.();
  }

  private need(grants: readonly string[]): CatalogNeed {
    const key = grants.join('\u0000');
    let need = this.needs.get(key);
    if (!need) {
      need = this.deps.engine.catalogNeed(this.info.identity, this.info.connection.name, { grants });
      this.needs.set(key, need);
    }
    return need;
  }
}

/** What an EXECUTE or FETCH runs stays attached to its resolved copy (the record names it). */
function linked(before: Classification, after: Named): Named {
  if (before.ok && after.classification.ok)
    before.statements.forEach((s, i) => {
      const copy = after.classification.ok ? after.classification.statements[i] : undefined;
      if (copy && copy !== s) keepDefinitionRun(s, copy);
    });
  return after;
}
