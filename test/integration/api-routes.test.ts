/**
 * The HTTP API against an identity with a valid token and little else (docs/security.md, "The HTTP
 * API"): what it may learn and do beyond its own policies. Real gateway, IdP and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import { type Stack, startStack } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: deployers
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: secret-ops
    groups: [ops]
    connections: [prod-db]
    requestable: true
    rules:
      - { name: ops-all, allow: [read, write] }
  - name: engineers-elsewhere
    groups: [engineering]
    connections: [other-*]
    requestable: true
    rules:
      - { name: reads, allow: [read] }
  - name: reviewers
    groups: [db-reviewers]
    connections: [prod-db]
    review: true
    rules:
      - { name: reads, allow: [read] }
  - name: break-glass
    groups: [db-reviewers]
    connections: [prod-db]
    requestable: true
    max_duration: 1h
    rules:
      - { name: writes, allow: [write] }
`;

let stack: Stack;
let fetchCa: typeof fetch;
const tokens: Record<string, string> = {};

async function call(who: string, method: string, path: string, body?: unknown) {
  const response = await fetchCa(`${stack.gatewayUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokens[who]}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const message = (r: { body: Record<string, unknown> }) => (r.body.error as { message: string }).message;

beforeAll(async () => {
  stack = await startStack({ policies: POLICIES });
  fetchCa = fetchTrustingCa(stack.certs!.caCert) as typeof fetch;
  for (const user of ['alice@example.com', 'rita@example.com']) {
    tokens[user] = (await stack.cli(await stack.login(user), ['token'])).stdout.trim();
  }
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('the HTTP API as an identity with a valid token and no policy on the connection', () => {
  it('policy test and access requests do not tell a connection or policy that is not yours from none (found 2026-12-02, fifth round)', async () => {
    const alice = 'alice@example.com';
    // The tunnel's answer: the same whether prod-db exists or not.
    expect((await call(alice, 'GET', '/v1/connections')).body).toEqual([]);

    // POST /v1/policy/test used to explain prod-db (200, default-deny) and 404 only a name that does not exist.
    const explained = await call(alice, 'POST', '/v1/policy/test', {
      connection: 'prod-db',
      sql: 'select 1',
    });
    const unknown = await call(alice, 'POST', '/v1/policy/test', { connection: 'nope-db', sql: 'select 1' });
    expect(explained.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(message(explained)).toBe(`no connection "prod-db" for ${alice} (see: hoopctl connections)`);
    expect(message(unknown)).toBe(message(explained).replace('prod-db', 'nope-db'));

    // POST /v1/access-requests used to answer "no connection named", "no policy named", "is not
    // requestable" and "does not cover you": which connections and policies exist, and their shape.
    const ask = (connection: string, policy: string) =>
      call(alice, 'POST', '/v1/access-requests', { connection, policy, duration: '1h', reason: 'probe' });
    const answers = await Promise.all(
      [
        ['prod-db', 'deployers'], // exists, not requestable, not alice's
        ['prod-db', 'secret-ops'], // exists, requestable, not alice's
        ['prod-db', 'no-such-policy'],
        ['nope-db', 'no-such-policy'],
        ['other-db', 'engineers-elsewhere'], // alice's policy, by a glob, on a connection that does not exist
      ].map(async ([connection, policy]) => {
        const r = await ask(connection!, policy!);
        return { status: r.status, message: message(r) };
      }),
    );
    expect(answers).toEqual(
      answers.map((_, i) => {
        const [connection, policy] = [
          ['prod-db', 'deployers'],
          ['prod-db', 'secret-ops'],
          ['prod-db', 'no-such-policy'],
          ['nope-db', 'no-such-policy'],
          ['other-db', 'engineers-elsewhere'],
        ][i]!;
        return {
          status: 404,
          message: `no policy "${policy}" covers you on connection "${connection}" (see: hoopctl connections)`,
        };
      }),
    );
    // Nothing was filed.
    expect((await call(alice, 'GET', '/v1/access-requests')).body).toEqual({ access_requests: [] });
  });

  it('a member still gets its explanation, its refusal and its request', async () => {
    const rita = 'rita@example.com';
    const explained = await call(rita, 'POST', '/v1/policy/test', { connection: 'prod-db', sql: 'select 1' });
    expect(explained.status).toBe(200);
    expect(explained.body).toMatchObject({ decision: 'allow', policy: 'reviewers' });
    const own = await call(rita, 'POST', '/v1/access-requests', {
      connection: 'prod-db',
      policy: 'reviewers',
      duration: '1h',
      reason: 'x',
    });
    expect(own.status).toBe(403);
    expect(message(own)).toMatch(/not requestable/);
    const filed = await call(rita, 'POST', '/v1/access-requests', {
      connection: 'prod-db',
      policy: 'break-glass',
      duration: '1h',
      reason: 'INC-5',
    });
    expect(filed.status).toBe(201);
    expect(filed.body).toMatchObject({ policy: 'break-glass', status: 'pending' });
  });
});
