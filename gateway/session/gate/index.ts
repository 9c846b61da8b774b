/**
 * The gate every statement passes, as named checks in order, each in its own file:
 *
 *   revoked → parse (syntax errors as PostgreSQL reports them; prepared statements and cursors
 *   resolved) → names (search_path, temporary relations, the catalog) → policy (cached) → held
 *   settings (read-only sessions) → masking (only for identities with rules) → approval (slow path) →
 *   record (queued, LSN)
 *
 * The common case is synchronous: the verdict comes back at once with the LSN of the statement's
 * records, and the relay holds the statement until the log is durable up to it. Only a catalog load
 * (names, masking) and an approval wait return a promise. Every refusal is a typed `Refusal` (SQLSTATE and
 * routine); only the relay turns it into an ErrorResponse. If the record cannot be written, the
 * statement fails (fail closed) unless the operator chose fail-open, which start-up announced loudly.
 */
import type { ClassifiedStatement, Decision } from '../../../src/shared/statement.js';
import type { ApprovalHook } from '../../approvals/service.js';
import type { Catalog } from '../../catalog/catalog.js';
import type { GateRequest, GateVerdict, SessionGate, StatementOutcome } from '../../contracts/gate.js';
import type { Refusal } from '../../contracts/refusal.js';
import type { SessionInfo } from '../../contracts/session.js';
import type { MaskingFilter } from '../../masking/filter.js';
import type { SessionMasking, StatementMasking } from '../../masking/index.js';
import type { MessageDecision, PolicyEngine } from '../../policy/engine.js';
import type { NameLookup } from '../../sql/search-path.js';
import type { LookupSource } from '../../sql/session-names.js';
import type { SessionState } from '../session.js';
import { type DurableLog, durableLogOf } from './durable-log.js';
import { MaskingCheck, type MaskingResult, type ReadersSource } from './masking.js';
import { type Named, NamesCheck } from './names.js';
import { type Judged, judgeText, syntaxRefusal } from './parse.js';
import { PolicyCheck } from './policy.js';
import { type RecordBody, Recorder, statementData } from './record.js';
import {
  AUDIT_UNAVAILABLE,
  CATALOG_UNAVAILABLE,
  MASKING_UNAVAILABLE,
  policyRefusal,
  REVOKED,
} from './refusals.js';
import { checkRevoked } from './revoked.js';
import { BUILT_IN_READERS } from './statement-text.js';

export interface StatementGateDeps {
  engine: PolicyEngine;
  /** The audit log: with enqueue/whenDurable (LSNs), or only append() (adapted). */
  log: DurableLog | { append: DurableLog['append'] };
  failOpen: boolean;
  recordRows: number;
  recordBytes: number;
  /** Time-boxed grants in force for this identity on this connection (policy names). */
  grants(info: SessionInfo): string[];
  /** Is this identity revoked now? Checked per statement so revocation bites open sessions. */
  revoked(info: SessionInfo): boolean;
  onLogError(err: Error): void;
  /** Approval requests (gateway/approvals): without it, statements needing approval are refused. */
  approvals?: ApprovalHook;
  /** Masking for this session (gateway/masking), built on first need; without it results pass untouched. */
  masking?: (info: SessionInfo) => SessionMasking | undefined;
  /** The session's starting settings and transaction events (session.ts); without it, the server's defaults. */
  session?: SessionState;
  /** The connection's catalog, for resolving names (without it, names resolve textually). */
  catalog?: (info: SessionInfo) => LookupSource & { invalidate?(): void };
}

/**
 * The catalog's views and user functions passing on other sessions' statement text. A load that fails
 * rejects (the statement is refused: fail closed); a lookup without them (a test's) gives undefined.
 */
function readersOf(catalog: LookupSource | undefined): ReadersSource {
  if (!catalog) return () => undefined;
  const of = (lookup: NameLookup) => (lookup as Partial<Catalog>).statementText?.();
  return () => {
    const now = catalog.peek?.();
    return now ? of(now) : catalog.get().then((lookup) => of(lookup) ?? BUILT_IN_READERS);
  };
}

export function createStatementGate(info: SessionInfo, deps: StatementGateDeps): SessionGate {
  return new StatementGate(info, deps);
}

class StatementGate implements SessionGate {
  readonly recordRows: number;
  readonly recordBytes: number;
  readonly masksNotifications: boolean;
  private readonly policy: PolicyCheck;
  private readonly masking: MaskingCheck;
  private readonly names: NamesCheck;
  private readonly recorder: Recorder;
  /** Masking filters of statements in flight (their evidence goes into statement.result). */
  private readonly maskFilters = new Map<string, MaskingFilter>();
  /** DDL statements in flight: when one finishes, the masking catalog is reloaded. */
  private readonly ddlInFlight = new Set<string>();

  constructor(
    private readonly info: SessionInfo,
    private readonly deps: StatementGateDeps,
  ) {
    this.recordRows = deps.recordRows;
    this.recordBytes = deps.recordBytes;
    this.policy = new PolicyCheck(deps.engine, info);
    const catalog = deps.catalog?.(info);
    this.masking = new MaskingCheck(deps.engine, info, deps.masking, readersOf(catalog));
    const maskingRules = deps.engine
      .policiesFor(info.identity, info.connection.name, deps.grants(info))
      .some((p) => p.masking.length > 0);
    this.masksNotifications = maskingRules && deps.masking !== undefined;
    this.names = new NamesCheck(info, {
      engine: deps.engine,
      session: deps.session,
      catalog,
      masking: maskingRules && deps.masking !== undefined,
    });
    this.recorder = new Recorder(info, durableLogOf(deps.log), deps.onLogError);
  }

  check(request: GateRequest): GateVerdict | Promise<GateVerdict> {
    const revoked = checkRevoked(this.info, this.deps.revoked);
    if (revoked) {
      this.recordRefusal(request, revoked);
      return { action: 'refuse', refusal: REVOKED };
    }
    const judged = judgeText(request);
    const grants = this.deps.grants(this.info);
    let named: Named | Promise<Named>;
    try {
      named = this.names.resolve(judged.classification, grants);
    } catch (err) {
      return this.catalogUnavailable(err as Error);
    }
    if (named instanceof Promise)
      return named.then(
        (n) => this.afterNames(request, judged, n, grants),
        (err: Error) => this.catalogUnavailable(err),
      );
    return this.afterNames(request, judged, named, grants);
  }

  /** The names could not be resolved (the catalog cannot be read): fail closed, the session goes on. */
  private catalogUnavailable(err: Error): GateVerdict {
    this.deps.onLogError(new Error(`catalog unavailable: ${err.message}`));
    return { action: 'refuse', refusal: CATALOG_UNAVAILABLE };
  }

  private afterNames(
    request: GateRequest,
    syntactic: Judged,
    named: Named,
    grants: string[],
  ): GateVerdict | Promise<GateVerdict> {
    const judged: Judged = { ...syntactic, classification: named.classification, named };
    const decided = this.policy.decide(judged.classification, grants, judged.plain);
    const held = this.names.heldRefusal(named);
    if (held && decided.decision.action !== 'deny') {
      const index = named.effects.findIndex((e) => e.heldViolation);
      const statements = named.classification.ok ? named.classification.statements : [];
      return this.refuse(judged, request, held, statements[Math.max(0, index)]);
    }
    return this.afterPolicy(request, judged, decided, grants);
  }

  private afterPolicy(
    request: GateRequest,
    judged: Judged,
    decided: MessageDecision,
    grants: string[],
  ): GateVerdict | Promise<GateVerdict> {
    const decision = decided.decision;
    // A statement needing approval is held at its Query or Execute (with its bound values), not at Parse.
    const held = decision.action === 'approve' && this.deps.approvals !== undefined;
    if (decision.action === 'deny' || (decision.action === 'approve' && !held)) {
      return this.refuse(judged, request, decision, decided.statement);
    }
    // A Parse is only checked: the statement is recorded when it is executed.
    if (request.phase === 'parse') return { action: 'forward', statementIds: [] };
    const statements = judged.classification.ok ? judged.classification.statements : [];
    const masks = this.masking.plan(request, statements, judged.views, decided.statements, decision, grants);
    if (masks instanceof Promise)
      return masks.then((m) => this.afterMasking(m, judged, request, decided, held));
    return this.afterMasking(masks, judged, request, decided, held);
  }

  private afterMasking(
    masks: MaskingResult,
    judged: Judged,
    request: GateRequest,
    decided: MessageDecision,
    held: boolean,
  ): GateVerdict | Promise<GateVerdict> {
    if ('unavailable' in masks) {
      this.deps.onLogError(new Error(`masking catalog unavailable: ${masks.unavailable.message}`));
      return { action: 'refuse', refusal: MASKING_UNAVAILABLE };
    }
    const statements = judged.classification.ok ? judged.classification.statements : [];
    if ('deny' in masks) {
      const { index, rule, reason } = masks.deny;
      return this.refuse(judged, request, { action: 'deny', policy: null, rule, reason }, statements[index]);
    }
    if (held) return this.approve(judged, request, decided, masks.plans);
    return this.record(judged, request, decided, masks.plans);
  }

  /** Check: the record. Queue every statement's record; the relay holds the message until they are durable. */
  private record(
    judged: Judged,
    request: GateRequest,
    decided: MessageDecision,
    plans: StatementMasking[],
  ): GateVerdict {
    const statements = judged.classification.ok ? judged.classification.statements : [];
    const decision = decided.decision;
    const ids: string[] = [];
    const bodies: RecordBody[] = [];
    if (statements.length === 0) {
      const id = this.recorder.nextId();
      ids.push(id);
      bodies.push({ type: 'statement', data: statementData(undefined, request.sql, decision, id, request) });
    }
    for (const [i, stmt] of statements.entries()) {
      const id = this.recorder.nextId();
      ids.push(id);
      const data = statementData(stmt, stmt.text, decision, id, request);
      const maskedColumns = plans[i]?.masked;
      bodies.push({
        type: 'statement',
        data: maskedColumns ? { ...data, masked_columns: maskedColumns } : data,
      });
    }
    const lsn = this.recorder.enqueue(bodies);
    if (lsn instanceof Error && !this.deps.failOpen) return { action: 'refuse', refusal: AUDIT_UNAVAILABLE };
    if (judged.named) this.names.forwarded(ids, judged.named);
    const verdict = this.withMasking({ action: 'forward', statementIds: ids }, plans, statements);
    if (typeof lsn === 'number' && verdict.action === 'forward') verdict.lsn = lsn;
    return verdict;
  }

  /** Check: approval (the slow path). The records carry the approval id and are durable before anything waits. */
  private async approve(
    judged: Judged,
    request: GateRequest,
    decided: MessageDecision,
    plans: StatementMasking[],
  ): Promise<GateVerdict> {
    const decision = decided.decision;
    const stmts = judged.classification.ok ? judged.classification.statements : [];
    const heldIds = stmts.length > 0 ? stmts.map(() => this.recorder.nextId()) : [this.recorder.nextId()];
    const primary = decided.statement ? Math.max(0, stmts.indexOf(decided.statement)) : 0;
    const outcome = await this.deps.approvals!.hold({
      info: this.info,
      request,
      decision,
      searchPath: this.names.searchPath(),
      statementIds: heldIds,
      primary,
      record: async (approvalId) => {
        const bodies =
          stmts.length === 0
            ? [statementData(undefined, request.sql, decision, heldIds[0]!, request)]
            : stmts.map((stmt, i) =>
                statementData(stmt, stmt.text, decided.statements[i] ?? decision, heldIds[i]!, request),
              );
        const written = await Promise.all(
          bodies.map((data) =>
            this.recordOrFailOpen({ type: 'statement', data: { ...data, approval_id: approvalId } }),
          ),
        );
        return !written.includes(false);
      },
    });
    if (outcome.action === 'forward' && judged.named)
      this.names.forwarded(outcome.statementIds, judged.named);
    return this.withMasking(outcome, plans, stmts);
  }

  private async recordOrFailOpen(body: RecordBody): Promise<boolean> {
    return (await this.recorder.append(body)) || this.deps.failOpen;
  }

  /** Refuse: record the statement as denied and a policy.blocked record, then say why. */
  private refuse(
    judged: Judged,
    request: GateRequest,
    decision: Decision,
    blocked?: ClassifiedStatement,
  ): GateVerdict {
    const classification = judged.classification;
    this.recordRefusal(request, decision, blocked, classification.ok ? undefined : classification.error);
    this.deps.approvals?.blocked?.(this.info, request.sql, decision);
    if (!classification.ok) return { action: 'refuse', refusal: syntaxRefusal(request.sql) };
    const detail = blocked ? `${decision.reason} — ${truncate(blocked.text)}` : decision.reason;
    return { action: 'refuse', refusal: policyRefusal(decision, detail) };
  }

  /** The refused statement's record and its policy.blocked record (queued; a refusal waits for neither). */
  private recordRefusal(
    request: GateRequest,
    decision: Decision,
    blocked?: ClassifiedStatement,
    parseError?: string,
  ): void {
    const id = this.recorder.nextId();
    this.recorder.enqueueQuietly([
      { type: 'statement', data: statementData(blocked, request.sql, decision, id, request) },
      {
        type: 'policy.blocked',
        data: {
          statement_id: id,
          text: request.sql,
          rule: decision.rule,
          policy: decision.policy,
          reason: decision.reason,
          parse_error: parseError,
        },
      },
    ]);
  }

  /** Attach masking filters to a forward verdict; remember them (evidence) and DDL (catalog reload). */
  private withMasking(
    verdict: GateVerdict,
    plans: StatementMasking[],
    statements: readonly ClassifiedStatement[],
  ): GateVerdict {
    if (verdict.action !== 'forward') return verdict;
    verdict.statementIds.forEach((id, i) => {
      const filter = plans[i]?.filter;
      if (filter) this.maskFilters.set(id, filter);
      const cls = statements[i]?.class;
      if (this.masking.active && (cls === 'ddl' || cls === 'dcl')) {
        this.ddlInFlight.add(id);
        this.masking.invalidate();
      }
    });
    if (!plans.some((p) => p.filter)) return verdict;
    return { ...verdict, filters: verdict.statementIds.map((_, i) => plans[i]?.filter) };
  }

  searchPaths(): string[] {
    return this.names.searchPaths();
  }

  completed(statementId: string, outcome: StatementOutcome): void {
    this.names.completed(statementId, outcome.sqlstate !== undefined, outcome.skipped === true);
    const maskFilter = this.maskFilters.get(statementId);
    this.maskFilters.delete(statementId);
    if (this.ddlInFlight.delete(statementId)) this.masking.invalidate();
    const maskedColumns = maskFilter?.masked(outcome.result?.columns);
    // Lazy: nobody waits on a result record, so it rides along with the next commit.
    this.recorder.appendLazily({
      type: 'statement.result',
      data: {
        statement_id: statementId,
        tag: outcome.tag,
        rows: outcome.rows,
        bytes: outcome.bytes,
        duration_ms: outcome.durationMs,
        sqlstate: outcome.sqlstate,
        error: outcome.error,
        skipped: outcome.skipped || undefined,
        result: outcome.result,
        masked_columns: maskedColumns?.length ? maskedColumns : undefined,
      },
    });
  }

  whenDurable(lsn: number, callback: (err?: Error) => void): void {
    this.recorder.whenDurable(lsn, callback);
  }

  recordFailed(err: Error): Refusal | undefined {
    this.deps.onLogError(err);
    return this.deps.failOpen ? undefined : AUDIT_UNAVAILABLE;
  }
}

function truncate(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}
