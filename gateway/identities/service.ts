/**
 * The identities the gateway has seen, and revocation.
 *
 * - Every authenticated request or tunnel upserts its identity (first/last seen, kind, groups); the
 *   write is skipped when the same identity was written less than `seenWriteMs` ago, so busy
 *   clients cost one store write a minute, not one per request.
 * - Revocation lives in the store (identities.revoked_at) and in an in-memory cache each gateway
 *   refreshes every `refreshMs`: a token check or a statement never waits on the store, and several
 *   gateways sharing a PostgreSQL store agree within one refresh. A revocation made here takes effect
 *   here at once (cache updated, open sessions ended); another replica ends its sessions of that
 *   identity when its next refresh finds the revocation.
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { PolicyConfig } from '../../src/shared/config/schema.js';
import type {
  IdentityChangeRequest,
  IdentityChangeResponse,
  IdentityListResponse,
  IdentityView,
  PolicySubjectView,
} from '../../src/shared/identities-api.js';
import {
  type Identity,
  type IssuerSubject,
  identityKey,
  sameIssuer,
  subjectOf,
} from '../../src/shared/identity.js';
import { AuthError } from '../auth/errors.js';
import { HttpError } from '../transport/router.js';
import type { IdentityEntry, IdentityStore } from './model.js';

const DAY_MS = 86_400_000;

export interface IdentityServiceDeps {
  store: Pick<
    IdentityStore,
    'recordIdentitySeen' | 'listIdentities' | 'listRevokedIdentities' | 'setIdentityRevoked'
  >;
  /** Durable append to the audit log. */
  record(input: AuditRecordInput): Promise<unknown>;
  policies: readonly Pick<PolicyConfig, 'name' | 'subjects'>[];
  /** The configured issuers (policy subjects name one of them). */
  issuers?: readonly string[];
  /** End this gateway's open sessions of that identity; returns how many. */
  terminate(issuer: string, subject: string, message: string): number;
  /** How often the revocation cache is reloaded from the store (default 2 s). */
  refreshMs?: number;
  /** Least time between two last_seen writes for one identity (default 60 s). */
  seenWriteMs?: number;
  now?: () => number;
  onError?: (err: Error) => void;
}

export interface IdentityService {
  /** Load the revocation cache and start refreshing it. */
  start(): Promise<void>;
  stop(): void;
  /** Reload the revocation cache now; ends local sessions of identities newly revoked elsewhere. */
  refresh(): Promise<void>;
  /** Throws AuthError('revoked') when this identity is revoked. */
  admit(identity: Identity): void;
  isRevoked(identity: Pick<Identity, 'issuer' | 'subject'>): boolean;
  /** Record that this identity authenticated (first/last seen). Never throws. */
  seen(identity: Identity): Promise<void>;
  list(staleMs?: number): Promise<IdentityListResponse>;
  revoke(request: IdentityChangeRequest, by: Identity, source: string): Promise<IdentityChangeResponse>;
  restore(request: IdentityChangeRequest, by: Identity, source: string): Promise<IdentityChangeResponse>;
}

const keyOf = (issuer: string, subject: string) => `${issuer}\u0000${subject}`;

export function revokedMessage(subject: string, reason: string | undefined): string {
  return `${subject} has been revoked${reason ? ` (${reason})` : ''}: an admin can restore it with hoopctl identities restore`;
}

export function createIdentityService(deps: IdentityServiceDeps): IdentityService {
  const now = deps.now ?? Date.now;
  const refreshMs = deps.refreshMs ?? 2000;
  const seenWriteMs = deps.seenWriteMs ?? 60_000;
  const onError = deps.onError ?? (() => {});
  let revoked = new Map<string, IdentityEntry>();
  const lastWrite = new Map<string, number>();
  /** Bumped by every local change, so a refresh that read the store before the change is discarded. */
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;

  /** Policies naming each identity (issuer and subject), by identityKey. */
  const subjectsInPolicies = new Map<string, { who: IssuerSubject; policies: string[] }>();
  for (const policy of deps.policies) {
    for (const entry of policy.subjects) {
      const who = subjectOf(entry, deps.issuers ?? []);
      if (typeof who === 'string') continue;
      const key = identityKey(who);
      const known = subjectsInPolicies.get(key) ?? { who, policies: [] };
      known.policies.push(policy.name);
      subjectsInPolicies.set(key, known);
    }
  }

  const terminate = (entry: Pick<IdentityEntry, 'issuer' | 'subject' | 'revoked_reason'>) =>
    deps.terminate(
      entry.issuer,
      entry.subject,
      `hoop: ${revokedMessage(entry.subject, entry.revoked_reason)}`,
    );

  const doRefresh = async () => {
    const started = generation;
    const entries = await deps.store.listRevokedIdentities();
    if (started !== generation) return;
    const next = new Map(entries.map((e) => [keyOf(e.issuer, e.subject), e]));
    const before = revoked;
    revoked = next;
    for (const [key, entry] of next) if (!before.has(key)) terminate(entry);
  };

  const refresh = (): Promise<void> => {
    refreshing ??= doRefresh().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  const view = (entry: IdentityEntry, staleMs: number | undefined, at: number): IdentityView => {
    const idle = Math.max(0, at - Date.parse(entry.last_seen));
    return {
      issuer: entry.issuer,
      subject: entry.subject,
      kind: entry.kind,
      ...(entry.name ? { name: entry.name } : {}),
      groups: entry.groups,
      first_seen: entry.first_seen,
      last_seen: entry.last_seen,
      idle_days: Math.floor(idle / DAY_MS),
      stale: staleMs !== undefined && idle >= staleMs,
      revoked: entry.revoked_at !== undefined,
      ...(entry.revoked_at ? { revoked_at: entry.revoked_at, revoked_reason: entry.revoked_reason } : {}),
      policies: subjectsInPolicies.get(identityKey(entry))?.policies ?? [],
    };
  };

  const matching = async (request: IdentityChangeRequest): Promise<IdentityEntry[]> => {
    if (typeof request?.subject !== 'string' || !request.subject) {
      throw new HttpError(
        400,
        'bad_request',
        'subject: name the identity (e.g. alice@example.com or acme/app)',
      );
    }
    if (request.issuer !== undefined && typeof request.issuer !== 'string') {
      throw new HttpError(400, 'bad_request', 'issuer: expected a string');
    }
    const all = await deps.store.listIdentities();
    const found = all.filter(
      (e) => e.subject === request.subject && (!request.issuer || sameIssuer(e.issuer, request.issuer)),
    );
    const issuers = new Set(found.map((e) => e.issuer));
    if (!request.issuer && issuers.size > 1) {
      // The same subject from two issuers is two people: never act on both by accident.
      throw new HttpError(
        409,
        'conflict',
        `"${request.subject}" has signed in from ${issuers.size} issuers (${[...issuers].join(', ')}): name one with --issuer`,
      );
    }
    if (found.length === 0) {
      throw new HttpError(
        404,
        'not_found',
        `no identity "${request.subject}"${request.issuer ? ` from ${request.issuer}` : ''} has been seen by this gateway` +
          ' (a subject that never signed in has no access to revoke: remove it from the policies instead)',
      );
    }
    return found;
  };

  return {
    async start() {
      await refresh();
      timer = setInterval(() => {
        refresh().catch((err: Error) => onError(err));
      }, refreshMs);
      timer.unref();
    },

    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },

    refresh,

    isRevoked(identity) {
      return revoked.has(keyOf(identity.issuer, identity.subject));
    },

    admit(identity) {
      const entry = revoked.get(keyOf(identity.issuer, identity.subject));
      if (entry) throw new AuthError('revoked', revokedMessage(identity.subject, entry.revoked_reason));
    },

    async seen(identity) {
      const key = keyOf(identity.issuer, identity.subject);
      const at = now();
      const last = lastWrite.get(key);
      if (last !== undefined && at - last < seenWriteMs) return;
      lastWrite.set(key, at);
      try {
        await deps.store.recordIdentitySeen(identity, new Date(at).toISOString());
      } catch (err) {
        lastWrite.delete(key);
        onError(err as Error);
      }
    },

    async list(staleMs) {
      const at = now();
      const entries = await deps.store.listIdentities();
      const identities = entries
        .map((e) => view(e, staleMs, at))
        .filter((v) => staleMs === undefined || v.stale);
      const lastSeenByIdentity = new Map<string, number>();
      for (const e of entries) {
        const t = Date.parse(e.last_seen);
        const key = identityKey(e);
        lastSeenByIdentity.set(key, Math.max(t, lastSeenByIdentity.get(key) ?? 0));
      }
      const policySubjects: PolicySubjectView[] = [];
      for (const [key, { who, policies }] of subjectsInPolicies) {
        const { subject, issuer } = who;
        const last = lastSeenByIdentity.get(key);
        if (last === undefined) {
          policySubjects.push({ subject, issuer, policies, status: 'never_seen' });
        } else if (staleMs !== undefined && at - last >= staleMs) {
          policySubjects.push({
            subject,
            issuer,
            policies,
            status: 'stale',
            last_seen: new Date(last).toISOString(),
            idle_days: Math.floor((at - last) / DAY_MS),
          });
        }
      }
      return {
        now: new Date(at).toISOString(),
        ...(staleMs !== undefined ? { stale_days: staleMs / DAY_MS } : {}),
        identities,
        policy_subjects: policySubjects,
      };
    },

    async revoke(request, by, source) {
      const reason = typeof request?.reason === 'string' ? request.reason.trim() : '';
      if (!reason)
        throw new HttpError(400, 'bad_request', 'reason: say why the identity is revoked (--reason)');
      const found = await matching(request);
      const at = new Date(now()).toISOString();
      const changed: IdentityView[] = [];
      let terminated = 0;
      for (const entry of found) {
        generation++;
        await deps.store.setIdentityRevoked(entry.issuer, entry.subject, { at, reason });
        const updated: IdentityEntry = { ...entry, revoked_at: at, revoked_reason: reason };
        revoked.set(keyOf(entry.issuer, entry.subject), updated);
        const ended = terminate(updated);
        terminated += ended;
        await deps.record({
          type: 'identity.revoked',
          identity: by,
          source,
          data: {
            subject: entry.subject,
            issuer: entry.issuer,
            kind: entry.kind,
            reason,
            was_revoked: entry.revoked_at !== undefined || undefined,
            terminated_sessions: ended,
          },
        });
        changed.push(view(updated, undefined, Date.parse(at)));
      }
      return { subject: request.subject, identities: changed, terminated_sessions: terminated };
    },

    async restore(request, by, source) {
      const found = await matching(request);
      const revokedOnes = found.filter((e) => e.revoked_at !== undefined);
      if (revokedOnes.length === 0) throw new HttpError(409, 'conflict', `${request.subject} is not revoked`);
      const reason =
        typeof request.reason === 'string' && request.reason.trim() ? request.reason.trim() : undefined;
      const changed: IdentityView[] = [];
      for (const entry of revokedOnes) {
        generation++;
        await deps.store.setIdentityRevoked(entry.issuer, entry.subject, null);
        revoked.delete(keyOf(entry.issuer, entry.subject));
        await deps.record({
          type: 'identity.restored',
          identity: by,
          source,
          data: {
            subject: entry.subject,
            issuer: entry.issuer,
            kind: entry.kind,
            reason,
            revoked_at: entry.revoked_at,
            revoked_reason: entry.revoked_reason,
          },
        });
        changed.push(view({ ...entry, revoked_at: undefined, revoked_reason: undefined }, undefined, now()));
      }
      return { subject: request.subject, identities: changed, terminated_sessions: 0 };
    },
  };
}
