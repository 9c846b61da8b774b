/**
 * The approval service: stores requests, holds statements until a decision, expires what nobody
 * decided, notifies webhooks, and keeps the time-boxed grants the policy engine applies.
 *
 * Several gateways: every change is a compare-and-set on the row's revision in the shared store, and
 * whoever wins a transition writes its audit record — so each step is recorded exactly once. A held
 * statement learns of a decision made through another gateway by polling its row (`pollMs`); one made
 * through this gateway wakes it at once.
 */
import { EventEmitter } from 'node:events';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { formatDuration } from '../../src/shared/duration.js';
import type { Identity } from '../../src/shared/identity.js';
import type { Decision } from '../../src/shared/statement.js';
import type { GateRequest, GateVerdict } from '../contracts/gate.js';
import { AUDIT_UNAVAILABLE, type Refusal } from '../contracts/refusal.js';
import type { SessionInfo } from '../contracts/session.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { Approval, ApprovalPatch, ApprovalStore, Grant, GrantPatch, GrantStore } from './model.js';
import type { Notifier } from './notify.js';
import {
  accessRef,
  activeGrants,
  type Binding,
  checkUse,
  encodeParameters,
  expiryOf,
  hashStatement,
  isPast,
  oneLine,
  parseRequestRef,
} from './state.js';

export interface ApprovalServiceDeps {
  store: ApprovalStore & GrantStore;
  log: { append(input: AuditRecordInput): Promise<unknown> };
  engine: PolicyEngine;
  config: Pick<GatewayConfig, 'policies' | 'connections'>;
  notifier: Notifier;
  /** How often a held statement re-reads its request (decisions made through another gateway). Default 500 ms. */
  pollMs?: number;
  /** How often grants are re-read and expired requests swept. Default 1 s. */
  sweepMs?: number;
  onError(err: Error): void;
  /** This gateway's replica id: recorded on each request whose statement it holds (audit/replicas.ts). */
  replica?: string;
  /** Every approval record written here (metrics: requests, decisions and their latency). */
  observe?(type: AuditRecordInput['type'], approval: Approval): void;
}

/** A request filed or changed: which one (statement approvals and access requests have their own ids). */
export interface RequestChange {
  kind: 'statement' | 'access';
  id: number;
}

/** What the statement gate hands over when policy says `approve`. */
export interface HoldRequest {
  info: SessionInfo;
  request: GateRequest;
  decision: Decision;
  /** Ids of the statement records this message will have (one per statement of a Query). */
  statementIds: string[];
  /** Which of them needs the approval. */
  primary: number;
  /** The session's search_path as the message starts under; undefined when not known exactly. */
  searchPath?: string;
  /** Write the statement records, each carrying approval_id (write-ahead). False: the log cannot be written. */
  record(approvalId: number): Promise<boolean>;
}

/** The piece of the service the statement gate uses. */
export interface ApprovalHook {
  hold(h: HoldRequest): Promise<GateVerdict>;
  /** A statement was refused by policy: notify webhooks that ask for `policy.blocked` (never blocks). */
  blocked?(info: SessionInfo, text: string, decision: Decision): void;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** What an Execute was bound with: what an approval's hash covers besides the text. */
const bindingOf = (request: GateRequest): Binding => ({
  parameters: request.parameters,
  formats: request.parameterFormats,
  types: request.parameterTypes,
});

export function describeApprovers(a: Pick<Approval, 'approvers' | 'approvals_required'>): string {
  const n = a.approvals_required;
  return `${n} approver${n === 1 ? '' : 's'} from ${a.approvers.join(', ')}`;
}

export class ApprovalService implements ApprovalHook {
  private readonly changes = new EventEmitter();
  private grants: Grant[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly pollMs: number;
  private readonly sweepMs: number;

  constructor(readonly deps: ApprovalServiceDeps) {
    this.changes.setMaxListeners(0);
    this.pollMs = deps.pollMs ?? 500;
    this.sweepMs = deps.sweepMs ?? 1000;
  }

  async start(): Promise<void> {
    await this.sweep();
    this.timer = setInterval(() => void this.sweep(), this.sweepMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Requestable policies granted to this identity on this connection now (undefined: any connection). */
  grantsFor(identity: Pick<Identity, 'issuer' | 'subject'>, connection?: string): string[] {
    return activeGrants(this.grants, identity, connection, Date.now());
  }

  /** Something changed request `id` (or filed it): wake whoever holds its statement here, tell listeners. */
  changed(kind: 'statement' | 'access', id: number, grant?: Grant): void {
    if (kind === 'access' && grant) this.grants = [...this.grants.filter((g) => g.id !== grant.id), grant];
    this.changes.emit(`${kind}:${id}`);
    this.changes.emit('change', { kind, id } satisfies RequestChange);
  }

  /** Every request filed or changed through this gateway (the console's live inbox); returns the unsubscribe. */
  onChange(listener: (change: RequestChange) => void): () => void {
    this.changes.on('change', listener);
    return () => this.changes.off('change', listener);
  }

  async record(input: AuditRecordInput): Promise<void> {
    try {
      await this.deps.log.append(input);
    } catch (err) {
      this.deps.onError(err as Error);
    }
  }

  approvalRecord(
    type: AuditRecordInput['type'],
    a: Approval,
    identity: Identity | undefined,
    data: Record<string, unknown>,
  ) {
    this.deps.observe?.(type, a);
    return this.record({
      type,
      identity,
      connection: a.connection,
      session: a.session,
      data: {
        approval_id: a.id,
        statement_id: a.statement_id,
        requester: a.requester.subject,
        rule: a.rule,
        policy: a.policy,
        ...data,
      },
    });
  }

  grantRecord(
    type: AuditRecordInput['type'],
    g: Grant,
    identity: Identity | undefined,
    data: Record<string, unknown>,
  ) {
    return this.record({
      type,
      identity,
      connection: g.connection,
      data: {
        request_id: accessRef(g.id),
        requester: g.subject,
        policy: g.policy,
        duration_ms: g.duration_ms,
        reason: g.reason,
        ...data,
      },
    });
  }

  /** Compare-and-set from a status; re-reads and retries while only the revision moved. */
  async transition(
    id: number,
    from: readonly Approval['status'][],
    patch: (a: Approval) => ApprovalPatch,
  ): Promise<{ won: Approval | undefined; current: Approval | undefined }> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.deps.store.getApproval(id);
      if (!current || !from.includes(current.status)) return { won: undefined, current };
      const won = await this.deps.store.transitionApproval(id, current.revision ?? 0, patch(current));
      if (won) {
        this.changed('statement', id);
        return { won, current: won };
      }
    }
    return { won: undefined, current: await this.deps.store.getApproval(id) };
  }

  async transitionGrant(
    id: number,
    from: readonly Grant['status'][],
    patch: (g: Grant) => GrantPatch,
  ): Promise<{ won: Grant | undefined; current: Grant | undefined }> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await this.deps.store.getGrant(id);
      if (!current || !from.includes(current.status)) return { won: undefined, current };
      const won = await this.deps.store.transitionGrant(id, current.revision ?? 0, patch(current));
      if (won) {
        this.changed('access', id, won);
        return { won, current: won };
      }
    }
    return { won: undefined, current: await this.deps.store.getGrant(id) };
  }

  /** Expire a pending request (whoever wins records it). */
  async expire(id: number, reason: string): Promise<Approval | undefined> {
    const { won, current } = await this.transition(id, ['pending'], () => ({
      status: 'expired',
      decided_at: iso(Date.now()),
      outcome_reason: reason,
    }));
    if (won) {
      await this.approvalRecord('approval.expired', won, undefined, { reason, expires_at: won.expires_at });
      this.deps.notifier.emit('approval.expired', {
        summary: `request #${won.id} by ${won.requester.subject} on ${won.connection} expired: ${reason}`,
        data: {
          id: String(won.id),
          statement: won.statement,
          connection: won.connection,
          requester: won.requester.subject,
        },
      });
    }
    return current;
  }

  /** The client cancelled or went away: the request is withdrawn (even if approved meanwhile: it will not run). */
  async withdraw(id: number, reason: string, identity: Identity | undefined): Promise<Approval | undefined> {
    const { won, current } = await this.transition(id, ['pending', 'approved'], () => ({
      status: 'withdrawn',
      outcome_reason: reason,
    }));
    if (won) {
      await this.approvalRecord('approval.withdrawn', won, identity, { reason });
      this.deps.notifier.emit('approval.withdrawn', {
        summary: `request #${won.id} by ${won.requester.subject} on ${won.connection} was withdrawn: ${reason}`,
        data: { id: String(won.id), connection: won.connection, requester: won.requester.subject },
      });
    }
    return current;
  }

  /**
   * A replica died holding statements that waited for approval: withdraw those requests, so nobody
   * approves a statement no session will run. Deferred requests (exec --no-wait) are held by nobody and stay.
   */
  async withdrawHeldBy(replica: string): Promise<number> {
    let withdrawn = 0;
    for (const status of ['pending', 'approved'] as const) {
      for (const a of await this.deps.store.listApprovals({ status, replica })) {
        if (a.mode === 'deferred') continue;
        const reason = `replica ${replica}, which held the statement, stopped responding`;
        const { won } = await this.transition(a.id, ['pending', 'approved'], () => ({
          status: 'withdrawn',
          outcome_reason: reason,
          decided_at: iso(Date.now()),
        }));
        if (!won) continue;
        withdrawn++;
        await this.approvalRecord('approval.withdrawn', won, undefined, { reason, replica });
        this.deps.notifier.emit('approval.withdrawn', {
          summary: `request #${won.id} by ${won.requester.subject} on ${won.connection} was withdrawn: ${reason}`,
          data: { id: String(won.id), connection: won.connection, requester: won.requester.subject },
        });
      }
    }
    return withdrawn;
  }

  /** Periodic: re-read grants (other gateways decide too), expire grants and requests past their time. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      const approved = await this.deps.store.listGrants({ status: 'approved' });
      this.grants = approved;
      for (const g of approved) {
        if (!isPast(g.expires_at, now)) continue;
        const { won } = await this.transitionGrant(g.id, ['approved'], () => ({ status: 'expired' }));
        if (won) {
          await this.grantRecord('access.expired', won, undefined, { expires_at: won.expires_at });
          this.deps.notifier.emit('access.expired', {
            summary: `${won.subject}'s access to policy ${won.policy} on ${won.connection} expired`,
            data: {
              id: accessRef(won.id),
              policy: won.policy,
              connection: won.connection,
              requester: won.subject,
            },
          });
        }
      }
      for (const a of await this.deps.store.listExpiredApprovals(iso(now))) {
        await this.expire(a.id, 'no decision before it expired');
      }
    } catch (err) {
      this.deps.onError(err as Error);
    } finally {
      this.sweeping = false;
    }
  }

  blocked(info: SessionInfo, text: string, decision: Decision): void {
    this.deps.notifier.emit('policy.blocked', {
      summary: `${info.identity.name ?? info.identity.subject} was refused on ${info.connection.name} by rule ${decision.rule}${decision.policy ? ` of policy ${decision.policy}` : ''}`,
      data: {
        requester: info.identity.subject,
        connection: info.connection.name,
        session: info.id,
        statement: text,
        rule: decision.rule,
        policy: decision.policy,
        reason: decision.reason,
      },
    });
  }

  // ---- holding a statement ------------------------------------------------------------------------

  async hold(h: HoldRequest): Promise<GateVerdict> {
    const { info, request, decision } = h;
    const params = encodeParameters(request.parameters, request.parameterFormats);
    if (info.approval) return this.runApproved(h);

    const deferred = info.approvalWait === 'none';
    // A deferred run must reproduce the path the reviewer saw: it has to be known exactly now.
    if (deferred && h.searchPath === undefined) return this.invalid(h, SEARCH_PATH_UNKNOWN);
    const clientWait =
      !deferred && info.approvalWait && /^\d+$/.test(info.approvalWait)
        ? Number(info.approvalWait)
        : undefined;
    const now = Date.now();
    let approval: Approval;
    try {
      approval = await this.deps.store.createApproval({
        requester: info.identity,
        connection: info.connection.name,
        session: info.id,
        statement: request.sql,
        statement_hash: hashStatement(request.sql, bindingOf(request), h.searchPath),
        params,
        search_path: h.searchPath,
        rule: decision.rule,
        policy: decision.policy ?? '',
        approvers: decision.approvers ?? [],
        approvals_required: decision.approvalsRequired ?? 1,
        created_at: iso(now),
        expires_at: expiryOf(now, decision.timeoutMs ?? 1_800_000, clientWait),
        mode: deferred ? 'deferred' : 'wait',
        statement_id: h.statementIds[h.primary],
        replica: deferred ? undefined : this.deps.replica,
      });
    } catch (err) {
      this.deps.onError(err as Error);
      return { action: 'refuse', refusal: AUDIT_UNAVAILABLE };
    }
    if (!(await h.record(approval.id))) {
      await this.withdraw(approval.id, 'the audit log cannot be written', info.identity).catch(
        () => undefined,
      );
      return { action: 'refuse', refusal: AUDIT_UNAVAILABLE };
    }
    await this.approvalRecord('approval.requested', approval, info.identity, {
      statement: approval.statement,
      statement_hash: approval.statement_hash,
      params: approval.params,
      search_path: approval.search_path,
      approvers: approval.approvers,
      approvals_required: approval.approvals_required,
      expires_at: approval.expires_at,
      mode: approval.mode,
      protocol: request.phase === 'query' ? 'simple' : 'extended',
    });
    this.changed('statement', approval.id);
    this.deps.notifier.emit('approval.requested', {
      summary: `${info.identity.name ?? info.identity.subject} asks to run a statement on ${approval.connection} (rule ${approval.rule}, needs ${describeApprovers(approval)})`,
      command: `hoopctl approve ${approval.id}`,
      data: {
        id: String(approval.id),
        requester: info.identity.subject,
        connection: approval.connection,
        statement: approval.statement,
        params: approval.params,
        search_path: approval.search_path,
        rule: approval.rule,
        policy: approval.policy,
        approvers: approval.approvers,
        approvals_required: approval.approvals_required,
        expires_at: approval.expires_at,
      },
    });

    if (deferred) {
      return {
        action: 'refuse',
        refusal: {
          sqlstate: '42501',
          message: `hoop: approval request #${approval.id} filed; the statement was not run (--no-wait)`,
          detail: `needs ${describeApprovers(approval)} (rule "${approval.rule}"): hoopctl approve ${approval.id}`,
          hint: `once approved, run it with: hoopctl exec ${approval.connection} --approval ${approval.id}`,
          routine: 'hoop_approval_pending',
        },
      };
    }

    request.notify({
      message: `hoop: waiting for approval #${approval.id} (rule "${approval.rule}" needs ${describeApprovers(approval)})`,
      detail: `approve: hoopctl approve ${approval.id}    reject: hoopctl reject ${approval.id} --reason "..."`,
      hint: `expires at ${approval.expires_at}; cancel the statement to withdraw the request`,
      routine: 'hoop_approval_waiting',
    });
    const final = await this.waitForOutcome(approval.id, request.signal, info.identity);
    return this.verdictFor(final, h);
  }

  /** Wait until the request leaves `pending`: decided (here or on another gateway), expired, or withdrawn. */
  private async waitForOutcome(
    id: number,
    signal: AbortSignal,
    identity: Identity,
  ): Promise<Approval | undefined> {
    for (;;) {
      if (signal.aborted) {
        const reason = signal.reason instanceof Error ? signal.reason.message : 'canceled by the client';
        return this.withdraw(id, reason, identity).catch((err: Error) => {
          this.deps.onError(err);
          return undefined;
        });
      }
      let current: Approval | undefined;
      try {
        current = await this.deps.store.getApproval(id);
      } catch (err) {
        this.deps.onError(err as Error);
      }
      if (current && current.status !== 'pending') return current;
      const now = Date.now();
      if (current && isPast(current.expires_at, now)) {
        const after = await this.expire(id, 'no decision before it expired').catch(() => undefined);
        if (after && after.status !== 'pending') return after;
      }
      const until = current ? Date.parse(current.expires_at) - now : this.pollMs;
      await this.sleep(`statement:${id}`, Math.max(1, Math.min(this.pollMs, until + 1)), signal);
    }
  }

  private sleep(event: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.changes.off(event, done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.changes.on(event, done);
      signal.addEventListener('abort', done);
    });
  }

  private async verdictFor(final: Approval | undefined, h: HoldRequest): Promise<GateVerdict> {
    const id = final?.id;
    if (final?.status === 'approved') {
      const { won } = await this.transition(final.id, ['approved'], () => ({
        status: 'used',
        used_at: iso(Date.now()),
        used_session: h.info.id,
      }));
      if (won) {
        const by = won.decisions.filter((d) => d.decision === 'approve');
        return {
          action: 'forward',
          statementIds: h.statementIds,
          notices: [
            {
              message: `hoop: approval #${won.id} granted by ${by.map((d) => d.name ?? d.subject).join(', ')}`,
              ...(by.some((d) => d.comment)
                ? {
                    detail: by
                      .map((d) => d.comment)
                      .filter(Boolean)
                      .join('; '),
                  }
                : {}),
              routine: 'hoop_approval_granted',
            },
          ],
        };
      }
      final = await this.deps.store.getApproval(final.id);
    }
    switch (final?.status) {
      case 'rejected': {
        const by = final.decisions.find((d) => d.decision === 'reject');
        return refusal(
          '42501',
          `hoop: approval request #${id} was rejected by ${by?.name ?? by?.subject ?? 'a reviewer'}: ${final.outcome_reason ?? 'no reason given'}`,
          'hoop_approval_rejected',
          final,
        );
      }
      case 'expired':
        return refusal(
          '57014',
          `hoop: approval request #${id} expired without a decision (it waited until ${final.expires_at})`,
          'hoop_approval_expired',
          final,
        );
      case 'withdrawn':
        return refusal(
          '57014',
          final.outcome_reason?.startsWith('replica ')
            ? `hoop: approval request #${id} was withdrawn: ${final.outcome_reason}; run the statement again`
            : `canceling statement due to user request (approval request #${id} withdrawn)`,
          'hoop_approval_withdrawn',
          final,
        );
      default:
        return refusal(
          '57014',
          `hoop: approval request #${id ?? '?'} ended as ${final?.status ?? 'unknown'}`,
          'hoop_approval_expired',
          final,
        );
    }
  }

  /** A session opened with `exec --approval ID`: run the statement that request approved, once. */
  private async runApproved(h: HoldRequest): Promise<GateVerdict> {
    const { info, request } = h;
    const ref = parseRequestRef(info.approval ?? '');
    const invalid = (message: string, approval?: Approval) => this.invalid(h, message, approval);
    if (ref?.kind !== 'statement') return invalid(`"${info.approval}" is not a statement approval id`);
    const approval = await this.deps.store.getApproval(ref.id);
    if (!approval) return invalid(`there is no approval request #${ref.id}`);
    const use = {
      identity: info.identity,
      connection: info.connection.name,
      text: request.sql,
      binding: bindingOf(request),
      searchPath: h.searchPath,
    };
    const check = checkUse(approval, use, Date.now());
    if (!check.ok) return invalid(check.message, approval);
    if (!(await h.record(approval.id))) return { action: 'refuse', refusal: AUDIT_UNAVAILABLE };
    const { won, current } = await this.transition(approval.id, ['approved'], () => ({
      status: 'used',
      used_at: iso(Date.now()),
      used_session: info.id,
    }));
    if (!won) {
      return refusal(
        '42501',
        `hoop: approval #${approval.id} cannot be used: it is ${current?.status ?? 'gone'}`,
        'hoop_approval_invalid',
      );
    }
    return {
      action: 'forward',
      statementIds: h.statementIds,
      notices: [
        {
          message: `hoop: running the statement approved by request #${won.id}`,
          routine: 'hoop_approval_granted',
        },
      ],
    };
  }

  /** Refuse a statement that cannot use (or file) the approval: recorded as policy.blocked, then 42501. */
  private async invalid(h: HoldRequest, message: string, approval?: Approval): Promise<GateVerdict> {
    const { info, request } = h;
    if (approval) await h.record(approval.id);
    await this.record({
      type: 'policy.blocked',
      identity: info.identity,
      source: info.source,
      connection: info.connection.name,
      session: info.id,
      data: {
        statement_id: h.statementIds[h.primary],
        text: request.sql,
        rule: h.decision.rule,
        policy: h.decision.policy,
        reason: message,
        approval_id: approval?.id,
      },
    });
    return refusal('42501', `hoop: ${message}`, 'hoop_approval_invalid');
  }

  /**
   * Settings a session opened with `exec --approval ID` starts with upstream: the search_path the
   * request was filed under, so the approved text names what the reviewer saw (checkUse compares).
   */
  async runSettings(info: SessionInfo): Promise<Record<string, string>> {
    const ref = parseRequestRef(info.approval ?? '');
    if (ref?.kind !== 'statement') return {};
    const approval = await this.deps.store.getApproval(ref.id);
    const own =
      approval?.requester.issuer === info.identity.issuer &&
      approval.requester.subject === info.identity.subject;
    return own && approval.search_path !== undefined ? { search_path: approval.search_path } : {};
  }

  /** Summary for a person. */
  describe(a: Approval): string {
    return `#${a.id} ${a.requester.subject} on ${a.connection}: ${oneLine(a.statement)}`;
  }

  durationText(ms: number): string {
    return formatDuration(ms);
  }
}

const SEARCH_PATH_UNKNOWN =
  "the session's search_path is not known exactly (statements in flight, or a set_config the gateway cannot follow), so the request cannot be deferred: SET search_path explicitly, then send it again";

function refusal(sqlstate: string, message: string, routine: string, approval?: Approval): GateVerdict {
  const refused: Refusal = {
    sqlstate,
    message,
    ...(approval ? { detail: `statement: ${oneLine(approval.statement, 200)}` } : {}),
    routine,
  };
  return { action: 'refuse', refusal: refused };
}
export function createApprovalService(deps: ApprovalServiceDeps): ApprovalService {
  return new ApprovalService(deps);
}
