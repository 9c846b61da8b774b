import { describe, expect, it } from 'vitest';
import {
  activeGrants,
  applyDecision,
  applyGrantDecision,
  checkAccessRequest,
  checkDecider,
  checkGrantDecider,
  checkUse,
  encodeParameters,
  expiryOf,
  hashStatement,
  parseRequestRef,
} from '../../../gateway/approvals/state.js';
import type { Approval, Grant } from '../../../gateway/store/types.js';
import type { PolicyConfig } from '../../../src/shared/config/schema.js';
import type { Identity } from '../../../src/shared/identity.js';

const who = (subject: string, groups: string[], issuer = 'https://idp'): Identity =>
  ({ issuer, subject, groups, kind: 'human', name: subject }) as Identity;
const alice = who('alice', ['engineering']);
const rita = who('rita', ['db-reviewers']);
const ravi = who('ravi', ['db-reviewers']);
const aubrey = who('aubrey', ['audit']);
const NOW = Date.parse('2026-11-23T10:00:00Z');

function approval(overrides: Partial<Approval> = {}): Approval {
  return {
    id: 42,
    status: 'pending',
    requester: alice,
    connection: 'prod-db',
    session: 's1',
    statement: 'delete from orders where id = 7',
    statement_hash: hashStatement('delete from orders where id = 7', {}, '"$user", public'),
    search_path: '"$user", public',
    rule: 'changes-need-review',
    policy: 'engineers',
    approvers: ['db-reviewers'],
    approvals_required: 1,
    decisions: [],
    created_at: new Date(NOW - 60_000).toISOString(),
    expires_at: new Date(NOW + 60_000).toISOString(),
    mode: 'wait',
    revision: 0,
    ...overrides,
  };
}

describe('request ids', () => {
  it('statement approvals are numbers, access requests access-<n>', () => {
    expect(parseRequestRef('42')).toEqual({ kind: 'statement', id: 42 });
    expect(parseRequestRef('#42')).toEqual({ kind: 'statement', id: 42 });
    expect(parseRequestRef('access-3')).toEqual({ kind: 'access', id: 3 });
    expect(parseRequestRef('ACCESS-3')).toEqual({ kind: 'access', id: 3 });
    for (const bad of ['', 'x', '4 2', '-1', 'access-', '1e3', '42; drop'])
      expect(parseRequestRef(bad)).toBeUndefined();
  });
});

describe('bound parameters', () => {
  it('decodes text values, keeps binary ones as hex, NULL as null', () => {
    const params = [Buffer.from('7'), null, Buffer.from([0, 1, 255])];
    expect(encodeParameters(params, [])).toEqual(['7', null, '\u0000\u0001\ufffd']);
    expect(encodeParameters(params, [0, 0, 1])).toEqual(['7', null, '(binary) \\x0001ff']);
    expect(encodeParameters(params, [1])).toEqual(['(binary) \\x37', null, '(binary) \\x0001ff']);
    // The text `\x25` and the byte 0x25 ('%') read differently.
    expect(encodeParameters([Buffer.from('\\x25')], [0])).toEqual(['\\x25']);
    expect(encodeParameters([Buffer.from([0x25])], [1])).toEqual(['(binary) \\x25']);
    expect(encodeParameters([], [])).toBeUndefined();
  });
});

describe('deciding a statement approval', () => {
  it('lets a reviewer in an approver group approve; nobody approves their own request', () => {
    expect(checkDecider(approval(), rita, { review: true }, NOW)).toEqual({ ok: true });
    expect(checkDecider(approval({ requester: rita }), rita, { review: true }, NOW)).toMatchObject({
      ok: false,
      status: 403,
      message: expect.stringMatching(/your own/),
    });
    // The same subject from another issuer is another person.
    expect(
      checkDecider(
        approval({ requester: who('rita', ['db-reviewers'], 'https://other') }),
        rita,
        { review: true },
        NOW,
      ).ok,
    ).toBe(true);
    expect(checkDecider(approval(), rita, { review: false }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/review role/),
    });
    expect(checkDecider(approval(), aubrey, { review: true }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/db-reviewers/),
    });
  });

  it('refuses decisions on requests that are over or expired', () => {
    for (const status of ['approved', 'rejected', 'expired', 'withdrawn', 'used'] as const) {
      expect(checkDecider(approval({ status }), rita, { review: true }, NOW)).toMatchObject({
        ok: false,
        status: 409,
      });
    }
    expect(
      checkDecider(approval({ expires_at: new Date(NOW).toISOString() }), rita, { review: true }, NOW),
    ).toMatchObject({ ok: false, message: expect.stringMatching(/expired/) });
  });

  it('counts distinct approvers up to approvals_required; one approver cannot count twice', () => {
    const a = approval({ approvals_required: 2 });
    const first = applyDecision(a, rita, 'approve', 'looks fine', NOW);
    expect(first.status).toBe('pending');
    expect(first.approvals).toBe(1);
    const after = { ...a, decisions: first.patch.decisions! };
    expect(checkDecider(after, rita, { review: true }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/already approved/),
    });
    const second = applyDecision(after, ravi, 'approve', undefined, NOW);
    expect(second).toMatchObject({ status: 'approved', approvals: 2 });
    expect(second.patch).toMatchObject({ status: 'approved', decided_at: new Date(NOW).toISOString() });
    expect(second.patch.decisions!.map((d) => d.subject)).toEqual(['rita', 'ravi']);
  });

  it('a rejection ends the request at once, with its reason', () => {
    const r = applyDecision(approval({ approvals_required: 3 }), rita, 'reject', 'no WHERE clause', NOW);
    expect(r.status).toBe('rejected');
    expect(r.patch).toMatchObject({ status: 'rejected', outcome_reason: 'no WHERE clause' });
  });

  it('a deferred request, once approved, stays usable for its window from the approval', () => {
    const a = approval({
      mode: 'deferred',
      created_at: new Date(NOW - 1000).toISOString(),
      expires_at: new Date(NOW + 1_799_000).toISOString(),
    });
    const r = applyDecision(a, rita, 'approve', undefined, NOW);
    expect(r.patch.expires_at).toBe(new Date(NOW + 1_800_000).toISOString());
    expect(applyDecision(approval(), rita, 'approve', undefined, NOW).patch.expires_at).toBeUndefined();
  });

  it('expires at the sooner of the rule timeout and the client wait', () => {
    expect(expiryOf(NOW, 1_800_000)).toBe(new Date(NOW + 1_800_000).toISOString());
    expect(expiryOf(NOW, 1_800_000, 1000)).toBe(new Date(NOW + 1000).toISOString());
    expect(expiryOf(NOW, 1000, 1_800_000)).toBe(new Date(NOW + 1000).toISOString());
  });
});

describe('running an approved statement later (exec --approval)', () => {
  const deferred = approval({ mode: 'deferred', status: 'approved' });
  const use = {
    identity: alice,
    connection: 'prod-db',
    text: 'delete from orders where id = 7',
    searchPath: '"$user", public',
  };

  it('runs exactly that statement, by the requester, on that connection', () => {
    expect(checkUse(deferred, use, NOW)).toEqual({ ok: true });
    expect(checkUse(deferred, { ...use, text: 'delete from orders where id = 8' }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/different statement/),
    });
    expect(checkUse(deferred, { ...use, text: 'delete from orders where id = 7 ' }, NOW).ok).toBe(false);
    expect(checkUse(deferred, { ...use, identity: rita }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/someone else/),
    });
    expect(checkUse(deferred, { ...use, connection: 'staging' }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/connection/),
    });
  });

  it('with exactly the bound values, formats and parameter types it was approved with', () => {
    const text = 'update customers set country = $2 where name like $1';
    const filed = { parameters: [Buffer.from('\\x25'), Buffer.from('ZZ')], formats: [0], types: [25, 25] };
    const bound = approval({ mode: 'deferred', status: 'approved', statement: text });
    const withHash = { ...bound, statement_hash: hashStatement(text, filed, bound.search_path) };
    const run = (binding: Parameters<typeof hashStatement>[1]) =>
      checkUse(
        withHash,
        { identity: alice, connection: 'prod-db', text, binding, searchPath: bound.search_path },
        NOW,
      );
    expect(run(filed)).toEqual({ ok: true });
    for (const other of [
      { ...filed, parameters: [Buffer.from([0x25]), Buffer.from('ZZ')], formats: [1, 0] }, // 0x25 = '%'
      { ...filed, formats: [1] },
      { ...filed, types: [23, 25] },
      { ...filed, types: [] },
      { ...filed, parameters: [Buffer.from('\\x25'), null] },
      {},
    ]) {
      expect(run(other)).toMatchObject({ ok: false, message: expect.stringMatching(/parameter values/) });
    }
    // Without parameters the hash is the text's alone (requests filed before bindings were hashed).
    expect(hashStatement('select 1', {})).toBe(hashStatement('select 1'));
  });

  it('under exactly the search_path it was filed with, which the hash covers', () => {
    expect(checkUse(deferred, { ...use, searchPath: 'b' }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/filed under search_path "\$user", public, not this session's b/),
    });
    expect(checkUse(deferred, { ...use, searchPath: undefined }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/not known exactly/),
    });
    expect(checkUse({ ...deferred, search_path: undefined }, use, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/no recorded search_path/),
    });
    // A stored path that does not match its hash (an edited row) is refused too.
    const edited = { ...deferred, search_path: 'b' };
    expect(checkUse(edited, { ...use, searchPath: 'b' }, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/parameter values/),
    });
    expect(hashStatement('delete from t', {}, 'a')).not.toBe(hashStatement('delete from t', {}, 'b'));
    expect(hashStatement('delete from t', {}, 'a')).not.toBe(hashStatement('delete from t'));
  });

  it('once, while approved and within its window; never a request held in a session', () => {
    expect(checkUse({ ...deferred, status: 'used' }, use, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/already been used/),
    });
    expect(checkUse({ ...deferred, status: 'pending' }, use, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/pending, not approved/),
    });
    expect(checkUse({ ...deferred, expires_at: new Date(NOW - 1).toISOString() }, use, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/expired/),
    });
    expect(checkUse({ ...deferred, mode: 'wait' }, use, NOW)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/cannot be run elsewhere/),
    });
  });
});

describe('time-boxed access', () => {
  const policy = { name: 'break-glass', requestable: true, max_duration: 3_600_000 } as PolicyConfig;
  const grant = (overrides: Partial<Grant> = {}): Grant => ({
    id: 3,
    issuer: alice.issuer,
    subject: 'alice',
    connection: 'prod-db',
    policy: 'break-glass',
    reason: 'INC-1',
    status: 'pending',
    created_at: new Date(NOW).toISOString(),
    duration_ms: 3_600_000,
    revision: 0,
    ...overrides,
  });

  it('only requestable policies that cover the requester, for at most max_duration', () => {
    const db = 'prod-db';
    expect(checkAccessRequest(policy, 'break-glass', true, 3_600_000, db)).toEqual({ ok: true });
    // Unknown, or not the requester's (requestable or not): one answer, names are not disclosed.
    const hidden = {
      ok: false,
      status: 403,
      message: 'no policy "nope" covers you on connection "prod-db" (see: hoopctl connections)',
    };
    expect(checkAccessRequest(undefined, 'nope', true, 1000, db)).toEqual(hidden);
    expect(checkAccessRequest({ ...policy, name: 'nope' }, 'nope', false, 1000, db)).toEqual(hidden);
    expect(
      checkAccessRequest({ ...policy, name: 'nope', requestable: false }, 'nope', false, 1000, db),
    ).toEqual(hidden);
    expect(
      checkAccessRequest({ ...policy, requestable: false }, 'break-glass', true, 1000, db),
    ).toMatchObject({
      status: 403,
      message: expect.stringMatching(/not requestable/),
    });
    expect(checkAccessRequest(policy, 'break-glass', true, 3_600_001, db)).toMatchObject({
      message: expect.stringMatching(/at most 1h/),
    });
  });

  it('any reviewer but the requester decides; approval starts the clock', () => {
    expect(checkGrantDecider(grant(), rita, { review: true }, NOW)).toEqual({ ok: true });
    expect(checkGrantDecider(grant(), alice, { review: true }, NOW)).toMatchObject({
      message: expect.stringMatching(/your own/),
    });
    expect(checkGrantDecider(grant(), rita, { review: false }, NOW).ok).toBe(false);
    expect(checkGrantDecider(grant({ status: 'approved' }), rita, { review: true }, NOW).ok).toBe(false);
    expect(applyGrantDecision(grant(), rita, 'approve', undefined, NOW)).toMatchObject({
      status: 'approved',
      approved_by: 'rita',
      expires_at: new Date(NOW + 3_600_000).toISOString(),
    });
    expect(applyGrantDecision(grant(), rita, 'reject', 'use the runbook', NOW)).toMatchObject({
      status: 'rejected',
      decision_reason: 'use the runbook',
    });
  });

  it('a grant applies to its holder on its connection until it expires, then vanishes', () => {
    const live = grant({ status: 'approved', expires_at: new Date(NOW + 1000).toISOString() });
    expect(activeGrants([live], alice, 'prod-db', NOW)).toEqual(['break-glass']);
    expect(activeGrants([live], alice, undefined, NOW)).toEqual(['break-glass']);
    expect(activeGrants([live], alice, 'staging', NOW)).toEqual([]);
    expect(activeGrants([live], rita, 'prod-db', NOW)).toEqual([]);
    expect(activeGrants([live], alice, 'prod-db', NOW + 1000)).toEqual([]);
    expect(activeGrants([grant()], alice, 'prod-db', NOW)).toEqual([]);
  });
});
