/**
 * Approval requests and time-boxed access as pure state transitions: who may decide, what a decision
 * does, whether an approval may run a given statement, which grants are in force. No store, no clock
 * of its own (every function takes `now`), no sockets — service.ts applies these to the store.
 */
import { createHash } from 'node:crypto';
import type { PolicyConfig } from '../../src/shared/config/schema.js';
import { formatDuration } from '../../src/shared/duration.js';
import type { Identity } from '../../src/shared/identity.js';
import type { Approval, ApprovalDecision, ApprovalPatch, Grant, GrantPatch } from './model.js';

/** Statement approvals are numbers (`42`); access requests are `access-<n>` (their own id space). */
export type RequestRef = { kind: 'statement'; id: number } | { kind: 'access'; id: number };

export const ACCESS_PREFIX = 'access-';

export function parseRequestRef(text: string): RequestRef | undefined {
  const trimmed = text.trim().replace(/^#/, '');
  const access = /^access-(\d{1,15})$/i.exec(trimmed);
  if (access) return { kind: 'access', id: Number(access[1]) };
  if (/^\d{1,15}$/.test(trimmed)) return { kind: 'statement', id: Number(trimmed) };
  return undefined;
}

export const accessRef = (id: number): string => `${ACCESS_PREFIX}${id}`;

/** What a statement was bound with (extended protocol): values as sent, their formats, the Parse's types. */
export interface Binding {
  parameters?: readonly (Buffer | null)[];
  formats?: readonly number[];
  types?: readonly number[];
}

/**
 * SHA-256 hex of what runs: the exact statement text as it came on the wire and, when it was bound
 * with anything, the bound bytes with their format codes and the Parse's parameter types — the text
 * `\x25` and the binary byte 0x25 (`%`) are different values, and so are `1` as text and as int4 —
 * and the search_path it was filed under (the same text names other tables under another path).
 */
export function hashStatement(text: string, binding: Binding = {}, searchPath?: string): string {
  const hash = createHash('sha256').update(text, 'utf8');
  const values = binding.parameters ?? [];
  const types = binding.types ?? [];
  if (values.length > 0 || types.length > 0) {
    const formats = values.map((_, i) => formatOf(binding.formats, i));
    const bound = values.map((v) => (v === null ? null : v.toString('base64')));
    hash.update(`\0${JSON.stringify({ types, formats, bound })}`, 'utf8');
  }
  if (searchPath !== undefined) hash.update(`\0search_path=${searchPath}`, 'utf8');
  return hash.digest('hex');
}

/** Bind's format codes: none = all text, one = all that format, else one per parameter. */
function formatOf(formats: readonly number[] | undefined, i: number): number {
  return !formats || formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

/**
 * Bound parameters as a person can read them: text-format values decoded as UTF-8, binary ones as
 * `(binary) \x<hex>` (Postgres' bytea notation, marked: the text `\x25` is not the byte 0x25), NULL as
 * null.
 */
export function encodeParameters(
  parameters: readonly (Buffer | null)[] | undefined,
  formats: readonly number[] | undefined,
): (string | null)[] | undefined {
  if (!parameters || parameters.length === 0) return undefined;
  return parameters.map((p, i) =>
    p === null ? null : formatOf(formats, i) === 1 ? `(binary) \\x${p.toString('hex')}` : p.toString('utf8'),
  );
}

const sameIdentity = (a: Pick<Identity, 'issuer' | 'subject'>, b: Pick<Identity, 'issuer' | 'subject'>) =>
  a.issuer === b.issuer && a.subject === b.subject;

/** A refusal of a decision or a use: the HTTP status it maps to and one line for the person. */
export interface Refusal {
  ok: false;
  status: 403 | 404 | 409;
  message: string;
}
const refuse = (status: Refusal['status'], message: string): Refusal => ({ ok: false, status, message });

export const isPast = (iso: string | undefined, now: number): boolean =>
  iso !== undefined && Date.parse(iso) <= now;

/** May this person decide this statement approval now? */
export function checkDecider(
  approval: Approval,
  decider: Identity,
  roles: { review: boolean },
  now: number,
): { ok: true } | Refusal {
  if (sameIdentity(approval.requester, decider)) {
    return refuse(403, `you cannot decide your own request #${approval.id}: another approver must`);
  }
  if (!roles.review) return refuse(403, `${decider.subject} does not have the review role`);
  if (!decider.groups.some((g) => approval.approvers.includes(g))) {
    return refuse(
      403,
      `request #${approval.id} needs an approver from ${approval.approvers.join(', ')}; ${decider.subject} is in none`,
    );
  }
  if (approval.status !== 'pending')
    return refuse(409, `request #${approval.id} is already ${approval.status}`);
  if (isPast(approval.expires_at, now)) return refuse(409, `request #${approval.id} has expired`);
  if (approval.decisions.some((d) => d.subject === decider.subject && d.issuer === decider.issuer)) {
    return refuse(409, `you have already approved request #${approval.id}; it needs another approver`);
  }
  return { ok: true };
}

export interface DecisionResult {
  patch: ApprovalPatch;
  /** The request's status after this decision. */
  status: 'pending' | 'approved' | 'rejected';
  decision: ApprovalDecision;
  approvals: number;
}

/**
 * One approver's decision. A reject ends the request at once; approvals count distinct approvers
 * until `approvals_required`. A deferred request (exec --no-wait) stays usable, once approved, for as
 * long as it could wait for a decision (its timeout), counted from the approval.
 */
export function applyDecision(
  approval: Approval,
  decider: Identity,
  decision: 'approve' | 'reject',
  text: string | undefined,
  now: number,
): DecisionResult {
  const time = new Date(now).toISOString();
  const entry: ApprovalDecision = {
    subject: decider.subject,
    issuer: decider.issuer,
    ...(decider.name ? { name: decider.name } : {}),
    decision,
    ...(text ? { comment: text } : {}),
    time,
  };
  const decisions = [...approval.decisions, entry];
  const approvals = decisions.filter((d) => d.decision === 'approve').length;
  if (decision === 'reject') {
    return {
      patch: { status: 'rejected', decisions, decided_at: time, outcome_reason: text },
      status: 'rejected',
      decision: entry,
      approvals,
    };
  }
  if (approvals < approval.approvals_required) {
    return { patch: { decisions }, status: 'pending', decision: entry, approvals };
  }
  const patch: ApprovalPatch = { status: 'approved', decisions, decided_at: time };
  if (approval.mode === 'deferred') {
    const window = Math.max(Date.parse(approval.expires_at) - Date.parse(approval.created_at), 60_000);
    patch.expires_at = new Date(now + window).toISOString();
  }
  return { patch, status: 'approved', decision: entry, approvals };
}

/**
 * May a session opened with `exec --approval ID` run this statement under that approval? Only the
 * requester, on the same connection, the exact same text and parameters, a deferred request, approved,
 * not used yet, within its window.
 */
export function checkUse(
  approval: Approval,
  use: { identity: Identity; connection: string; text: string; binding?: Binding; searchPath?: string },
  now: number,
): { ok: true } | Refusal {
  const id = `#${approval.id}`;
  if (!sameIdentity(approval.requester, use.identity))
    return refuse(403, `approval ${id} was requested by someone else`);
  if (approval.connection !== use.connection) {
    return refuse(403, `approval ${id} is for connection "${approval.connection}", not "${use.connection}"`);
  }
  if (approval.mode !== 'deferred') {
    return refuse(
      403,
      `approval ${id} was for a statement held in session ${approval.session ?? '?'}; it cannot be run elsewhere`,
    );
  }
  if (approval.statement !== use.text) {
    return refuse(403, `approval ${id} is for a different statement: ${oneLine(approval.statement)}`);
  }
  const path = checkSearchPath(approval, use.searchPath);
  if (path) return path;
  if (approval.statement_hash !== hashStatement(use.text, use.binding, approval.search_path)) {
    return refuse(403, `approval ${id} is for different parameter values (or their formats or types)`);
  }
  if (approval.status === 'used')
    return refuse(409, `approval ${id} has already been used (approvals run once)`);
  if (approval.status !== 'approved')
    return refuse(409, `approval ${id} is ${approval.status}, not approved`);
  if (isPast(approval.expires_at, now))
    return refuse(409, `approval ${id} has expired (it was not used in time)`);
  return { ok: true };
}

/** A deferred run must see the statement's names as the reviewer did: under the search_path it was filed with. */
function checkSearchPath(approval: Approval, current: string | undefined): Refusal | undefined {
  const id = `#${approval.id}`;
  if (approval.search_path === undefined)
    return refuse(
      409,
      `approval ${id} has no recorded search_path (filed by an older gateway): file it again`,
    );
  if (current === undefined) {
    return refuse(
      409,
      `approval ${id} must run under search_path ${approval.search_path}, and this session's is not known exactly (statements in flight, or a set_config the gateway cannot follow)`,
    );
  }
  if (current !== approval.search_path) {
    return refuse(
      403,
      `approval ${id} was filed under search_path ${approval.search_path}, not this session's ${current}: the same text may name other tables`,
    );
  }
  return undefined;
}

/** When a new request expires: the rule's timeout, or the client's shorter wait (exec --approval-timeout). */
export function expiryOf(now: number, ruleTimeoutMs: number, clientWaitMs?: number): string {
  const wait =
    clientWaitMs !== undefined && clientWaitMs > 0 ? Math.min(ruleTimeoutMs, clientWaitMs) : ruleTimeoutMs;
  return new Date(now + wait).toISOString();
}

// ---- time-boxed access ---------------------------------------------------------------------------

/**
 * Is this a policy the identity may ask for, for this long, on this connection? `memberOfIt`: the
 * connection exists and the policy covers the identity there. A policy or connection that does not
 * exist and one that is not the identity's get the same answer: names are not disclosed (as a tunnel's
 * refusal does not); only a member learns that its policy is not requestable.
 */
export function checkAccessRequest(
  policy: PolicyConfig | undefined,
  name: string,
  memberOfIt: boolean,
  durationMs: number,
  connection: string,
): { ok: true } | Refusal {
  // 403 (the CLI's "denied by policy", exit 4), as "does not cover you" was: a name that does not exist
  // gets it too.
  if (!policy || !memberOfIt) {
    return refuse(
      403,
      `no policy "${name}" covers you on connection "${connection}" (see: hoopctl connections)`,
    );
  }
  if (!policy.requestable) return refuse(403, `policy "${name}" is not requestable (requestable: true)`);
  if (durationMs <= 0) return refuse(409, 'the duration must be positive');
  if (durationMs > policy.max_duration) {
    return refuse(409, `policy "${name}" may be granted for at most ${formatDuration(policy.max_duration)}`);
  }
  return { ok: true };
}

/** May this person decide this access request? Any reviewer but the requester. */
export function checkGrantDecider(
  grant: Grant,
  decider: Identity,
  roles: { review: boolean },
  now: number,
): { ok: true } | Refusal {
  const id = accessRef(grant.id);
  if (grant.issuer === decider.issuer && grant.subject === decider.subject) {
    return refuse(403, `you cannot decide your own request ${id}: another reviewer must`);
  }
  if (!roles.review) return refuse(403, `${decider.subject} does not have the review role`);
  if (grant.status !== 'pending') return refuse(409, `request ${id} is already ${grant.status}`);
  void now;
  return { ok: true };
}

export function applyGrantDecision(
  grant: Grant,
  decider: Identity,
  decision: 'approve' | 'reject',
  text: string | undefined,
  now: number,
): GrantPatch {
  const time = new Date(now).toISOString();
  if (decision === 'reject') {
    return { status: 'rejected', decided_by: decider.subject, decision_reason: text };
  }
  return {
    status: 'approved',
    approved_at: time,
    expires_at: new Date(now + grant.duration_ms).toISOString(),
    approved_by: decider.subject,
    decided_by: decider.subject,
    decision_reason: text,
  };
}

/** Policy names granted to this identity on this connection right now: approved and not yet expired. */
export function activeGrants(
  grants: readonly Grant[],
  identity: Pick<Identity, 'issuer' | 'subject'>,
  connection: string | undefined,
  now: number,
): string[] {
  const names = new Set<string>();
  for (const g of grants) {
    if (g.status !== 'approved' || !g.expires_at || isPast(g.expires_at, now)) continue;
    if (g.issuer !== identity.issuer || g.subject !== identity.subject) continue;
    if (connection !== undefined && g.connection !== connection) continue;
    names.add(g.policy);
  }
  return [...names];
}

export function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
