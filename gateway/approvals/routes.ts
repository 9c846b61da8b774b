/**
 * The approvals API: list and decide statement approvals, file and decide time-boxed access requests.
 * Ids: statement approvals are numbers ("42"); access requests are "access-<n>". One approve/reject
 * endpoint takes either.
 */
import { z } from 'zod';
import type {
  AccessRequestListResponse,
  AccessRequestView,
  ApprovalListResponse,
  ApprovalView,
  DecideResponse,
  MaskingView,
} from '../../src/shared/api.js';
import { formatDuration, parseDuration } from '../../src/shared/duration.js';
import type { Identity } from '../../src/shared/identity.js';
import { HttpError, type Route } from '../transport/router.js';
import type { Approval, Grant } from './model.js';
import { type ApprovalService, describeApprovers } from './service.js';
import {
  accessRef,
  applyDecision,
  applyGrantDecision,
  checkAccessRequest,
  checkDecider,
  checkGrantDecider,
  isPast,
  oneLine,
  parseRequestRef,
  type Refusal,
} from './state.js';

const decideBody = z
  .strictObject({ comment: z.string().max(2000).optional(), reason: z.string().max(2000).optional() })
  .optional();

const accessBody = z.strictObject({
  connection: z.string().min(1, 'must name a connection'),
  policy: z.string().min(1, 'must name a policy'),
  duration: z.string().min(1, 'must be a duration such as 1h'),
  reason: z.string().trim().min(1, 'must say why (--reason)').max(2000),
});

function fail(r: Refusal): never {
  throw new HttpError(
    r.status,
    r.status === 404 ? 'not_found' : r.status === 409 ? 'conflict' : 'forbidden',
    r.message,
  );
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HttpError(
      400,
      'bad_request',
      `body.${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

export function approvalView(
  a: Approval,
  caller: Identity,
  review: boolean,
  now: number,
  masking?: MaskingView[],
): ApprovalView {
  const expired = a.status === 'pending' && isPast(a.expires_at, now);
  const check = checkDecider(a, caller, { review }, now);
  return {
    id: String(a.id),
    kind: 'statement',
    status: expired ? 'expired' : a.status,
    mode: a.mode ?? 'wait',
    requester: a.requester,
    connection: a.connection,
    ...(a.session ? { session: a.session } : {}),
    statement: a.statement,
    statement_hash: a.statement_hash,
    ...(a.params ? { params: a.params as (string | null)[] } : {}),
    ...(a.search_path !== undefined ? { search_path: a.search_path } : {}),
    rule: a.rule,
    policy: a.policy,
    approvers: a.approvers,
    approvals_required: a.approvals_required,
    decisions: a.decisions.map((d) => ({
      subject: d.subject,
      ...(d.name ? { name: d.name } : {}),
      decision: d.decision,
      ...(d.comment ? { comment: d.comment } : {}),
      time: d.time,
    })),
    created_at: a.created_at,
    expires_at: a.expires_at,
    ...(a.decided_at ? { decided_at: a.decided_at } : {}),
    ...(a.used_at ? { used_at: a.used_at } : {}),
    ...(a.statement_id ? { statement_id: a.statement_id } : {}),
    ...(a.outcome_reason ? { outcome_reason: a.outcome_reason } : {}),
    ...(masking ? { masking } : {}),
    can_decide: check.ok,
    ...(check.ok ? {} : { why_not: check.message }),
  };
}

export function accessView(g: Grant, caller: Identity, review: boolean, now: number): AccessRequestView {
  const check = checkGrantDecider(g, caller, { review }, now);
  return {
    id: accessRef(g.id),
    kind: 'access',
    status: g.status === 'approved' && isPast(g.expires_at, now) ? 'expired' : g.status,
    requester: {
      issuer: g.issuer,
      subject: g.subject,
      ...(g.requester?.name ? { name: g.requester.name } : {}),
    },
    connection: g.connection,
    policy: g.policy,
    reason: g.reason,
    duration: formatDuration(g.duration_ms),
    duration_ms: g.duration_ms,
    created_at: g.created_at,
    ...(g.approved_at ? { approved_at: g.approved_at } : {}),
    ...(g.expires_at ? { expires_at: g.expires_at } : {}),
    ...(g.decided_by ? { decided_by: g.decided_by } : {}),
    ...(g.decision_reason ? { decision_reason: g.decision_reason } : {}),
    active: g.status === 'approved' && !isPast(g.expires_at, now),
    can_decide: check.ok,
    ...(check.ok ? {} : { why_not: check.message }),
  };
}

const mine = (caller: Identity, issuer: string, subject: string) =>
  caller.issuer === issuer && caller.subject === subject;

/** `?status=pending` (with `?all=true`): only requests in that state, whether or not the caller may decide them. */
function statusFilter(query: URLSearchParams): string | undefined {
  const status = query.get('status');
  if (!status) return undefined;
  if (!/^(pending|approved|rejected|expired|withdrawn|used|revoked)$/.test(status))
    throw new HttpError(400, 'bad_request', `status: unknown status "${status}"`);
  return status;
}

export function approvalRoutes(service: ApprovalService): Route[] {
  const { store, engine, config } = service.deps;
  const review = (identity: Identity) => engine.roles(identity).review;
  /** The masking the requester's statement would run under (what its results will show). */
  const maskingOf = (a: Approval): MaskingView[] =>
    engine.policiesFor(a.requester, a.connection, service.grantsFor(a.requester, a.connection)).flatMap((p) =>
      p.masking.map((m) => ({
        policy: p.name,
        ...(m.columns ? { columns: m.columns } : {}),
        ...(m.tags ? { tags: [...m.tags] } : {}),
        mask: m.mask,
      })),
    );

  const decideStatement = async (
    id: number,
    identity: Identity,
    decision: 'approve' | 'reject',
    text?: string,
  ): Promise<DecideResponse> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const a = await store.getApproval(id);
      if (!a) throw new HttpError(404, 'not_found', `no approval request #${id}`);
      const now = Date.now();
      if (a.status === 'pending' && isPast(a.expires_at, now)) {
        await service.expire(id, 'no decision before it expired');
        throw new HttpError(409, 'conflict', `request #${id} has expired`);
      }
      const check = checkDecider(a, identity, { review: review(identity) }, now);
      if (!check.ok) fail(check);
      const result = applyDecision(a, identity, decision, text, now);
      const won = await store.transitionApproval(id, a.revision ?? 0, result.patch);
      if (!won) continue; // someone else decided at the same moment: look again
      service.changed('statement', id);
      const type = decision === 'reject' ? 'approval.rejected' : 'approval.granted';
      await service.approvalRecord(type, won, identity, {
        decision,
        ...(text ? { [decision === 'reject' ? 'reason' : 'comment']: text } : {}),
        approvals: result.approvals,
        approvals_required: won.approvals_required,
        status: won.status,
      });
      const who = identity.name ?? identity.subject;
      service.deps.notifier.emit(type, {
        summary:
          decision === 'reject'
            ? `${who} rejected request #${id} (${won.requester.subject} on ${won.connection}): ${text ?? ''}`
            : won.status === 'approved'
              ? `${who} approved request #${id} (${won.requester.subject} on ${won.connection})`
              : `${who} approved request #${id}; it needs ${describeApprovers(won)} (${result.approvals} so far)`,
        data: {
          id: String(id),
          status: won.status,
          decided_by: identity.subject,
          statement: won.statement,
          connection: won.connection,
          requester: won.requester.subject,
          ...(text ? { comment: text } : {}),
        },
      });
      return {
        id: String(id),
        status: won.status,
        approvals: result.approvals,
        approvals_required: won.approvals_required,
        ...(won.mode === 'deferred' && won.status === 'approved' ? { expires_at: won.expires_at } : {}),
      };
    }
    throw new HttpError(409, 'conflict', `request #${id} kept changing; try again`);
  };

  const decideAccess = async (
    id: number,
    identity: Identity,
    decision: 'approve' | 'reject',
    text?: string,
  ): Promise<DecideResponse> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const g = await store.getGrant(id);
      if (!g) throw new HttpError(404, 'not_found', `no access request ${accessRef(id)}`);
      const now = Date.now();
      const check = checkGrantDecider(g, identity, { review: review(identity) }, now);
      if (!check.ok) fail(check);
      const won = await store.transitionGrant(
        id,
        g.revision ?? 0,
        applyGrantDecision(g, identity, decision, text, now),
      );
      if (!won) continue;
      service.changed('access', id, won);
      const type = decision === 'reject' ? 'access.rejected' : 'access.granted';
      await service.grantRecord(type, won, identity, {
        decided_by: identity.subject,
        ...(text ? { [decision === 'reject' ? 'rejection' : 'comment']: text } : {}),
        ...(won.expires_at ? { expires_at: won.expires_at } : {}),
      });
      service.deps.notifier.emit(type, {
        summary:
          decision === 'reject'
            ? `${identity.subject} rejected ${won.subject}'s request for ${won.policy} on ${won.connection}: ${text ?? ''}`
            : `${identity.subject} granted ${won.subject} policy ${won.policy} on ${won.connection} until ${won.expires_at}`,
        data: {
          id: accessRef(id),
          status: won.status,
          policy: won.policy,
          connection: won.connection,
          requester: won.subject,
          expires_at: won.expires_at,
        },
      });
      return {
        id: accessRef(id),
        status: won.status,
        ...(won.expires_at ? { expires_at: won.expires_at } : {}),
      };
    }
    throw new HttpError(409, 'conflict', `request ${accessRef(id)} kept changing; try again`);
  };

  const decide =
    (decision: 'approve' | 'reject'): Route['handler'] =>
    async ({ identity, params, body }) => {
      const parsed = parse(decideBody, body) ?? {};
      const text = (decision === 'reject' ? parsed.reason : parsed.comment)?.trim() || undefined;
      if (decision === 'reject' && !text)
        throw new HttpError(400, 'bad_request', 'a rejection needs a reason (--reason)');
      const ref = parseRequestRef(params.id ?? '');
      if (!ref) throw new HttpError(404, 'not_found', `"${params.id}" is not a request id (42, or access-3)`);
      return ref.kind === 'statement'
        ? decideStatement(ref.id, identity, decision, text)
        : decideAccess(ref.id, identity, decision, text);
    };

  return [
    {
      method: 'GET',
      path: '/v1/approvals',
      access: 'identity',
      handler: async ({ identity, query }): Promise<ApprovalListResponse> => {
        const all = query.get('all') === 'true' || query.get('all') === '1';
        const status = statusFilter(query);
        const isReviewer = review(identity);
        const now = Date.now();
        // Only `pending` is read narrowly from the store: an expired request may still be stored as pending.
        const narrow = !all || status === 'pending' ? { status: 'pending' as const } : {};
        const approvals = (await store.listApprovals(narrow))
          .map((a) => approvalView(a, identity, isReviewer, now, maskingOf(a)))
          .filter((v) => !status || v.status === status)
          .filter((v) =>
            all ? isReviewer || mine(identity, v.requester.issuer, v.requester.subject) : v.can_decide,
          )
          .reverse()
          .slice(0, 500);
        const grants = (await store.listGrants(narrow))
          .map((g) => accessView(g, identity, isReviewer, now))
          .filter((v) => !status || v.status === status)
          .filter((v) =>
            all ? isReviewer || mine(identity, v.requester.issuer, v.requester.subject) : v.can_decide,
          )
          .reverse()
          .slice(0, 500);
        return { approvals, access_requests: grants };
      },
    },
    {
      method: 'GET',
      path: '/v1/approvals/:id',
      access: 'identity',
      handler: async ({ identity, params }) => {
        const ref = parseRequestRef(params.id ?? '');
        const isReviewer = review(identity);
        const now = Date.now();
        if (ref?.kind === 'statement') {
          const a = await store.getApproval(ref.id);
          if (a && (isReviewer || mine(identity, a.requester.issuer, a.requester.subject)))
            return approvalView(a, identity, isReviewer, now, maskingOf(a));
        } else if (ref?.kind === 'access') {
          const g = await store.getGrant(ref.id);
          if (g && (isReviewer || mine(identity, g.issuer, g.subject)))
            return accessView(g, identity, isReviewer, now);
        }
        throw new HttpError(404, 'not_found', `no request ${params.id} that you may see`);
      },
    },
    { method: 'POST', path: '/v1/approvals/:id/approve', access: 'review', handler: decide('approve') },
    { method: 'POST', path: '/v1/approvals/:id/reject', access: 'review', handler: decide('reject') },
    {
      method: 'GET',
      path: '/v1/access-requests',
      access: 'identity',
      handler: async ({ identity, query }): Promise<AccessRequestListResponse> => {
        const isReviewer = review(identity);
        const all = (query.get('all') === 'true' || query.get('all') === '1') && isReviewer;
        const now = Date.now();
        const grants = await store.listGrants(all ? {} : { subject: identity.subject });
        return {
          access_requests: grants
            .filter((g) => all || g.issuer === identity.issuer)
            .map((g) => accessView(g, identity, isReviewer, now))
            .reverse(),
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/access-requests',
      access: 'identity',
      handler: async ({ identity, body, source }) => {
        const req = parse(accessBody, body);
        let durationMs: number;
        try {
          durationMs = parseDuration(req.duration);
        } catch (err) {
          throw new HttpError(400, 'bad_request', `duration: ${(err as Error).message}`);
        }
        // An unknown connection is answered as one the policy does not cover you on (names are not disclosed).
        const known = config.connections.some((c) => c.name === req.connection);
        const policy = config.policies.find((p) => p.name === req.policy);
        const member =
          known &&
          engine.policiesFor(identity, req.connection, [req.policy]).some((p) => p.name === req.policy);
        const check = checkAccessRequest(policy, req.policy, member, durationMs, req.connection);
        if (!check.ok) fail(check);
        const grant = await store.createGrant({
          issuer: identity.issuer,
          subject: identity.subject,
          connection: req.connection,
          policy: req.policy,
          reason: req.reason,
          duration_ms: durationMs,
          created_at: new Date().toISOString(),
          requester: identity,
        });
        await service.record({
          type: 'access.requested',
          identity,
          source,
          connection: grant.connection,
          data: {
            request_id: accessRef(grant.id),
            policy: grant.policy,
            duration_ms: grant.duration_ms,
            reason: grant.reason,
          },
        });
        service.deps.notifier.emit('access.requested', {
          summary: `${identity.name ?? identity.subject} asks for policy ${grant.policy} on ${grant.connection} for ${formatDuration(durationMs)}: ${oneLine(grant.reason)}`,
          command: `hoopctl approve ${accessRef(grant.id)}`,
          data: {
            id: accessRef(grant.id),
            requester: identity.subject,
            policy: grant.policy,
            connection: grant.connection,
            duration_ms: durationMs,
            reason: grant.reason,
          },
        });
        service.changed('access', grant.id);
        return { ...accessView(grant, identity, review(identity), Date.now()), created: true };
      },
    },
  ];
}
