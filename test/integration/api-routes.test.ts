/**
 * The HTTP API against an identity with a valid token and little else (docs/security.md, "The HTTP
 * API"): what it may learn and do beyond its own policies. Real gateway, IdP and PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { parseExport } from '../../src/shared/audit-export.js';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';
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
  - name: auditors
    groups: [audit]
    audit: true
  - name: break-glass
    groups: [db-reviewers]
    connections: [prod-db]
    requestable: true
    max_duration: 1h
    rules:
      - { name: writes, allow: [write] }
`;

let stack: Stack;
/** The audit store: PostgreSQL, as several replicas share it. */
let storePg: PgServer;
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
  storePg = await startPostgres();
  storePg.psql('CREATE DATABASE hoop_store');
  stack = await startStack({ policies: POLICIES, store: `  url: ${storePg.url('hoop_store')}` });
  fetchCa = fetchTrustingCa(stack.certs!.caCert) as typeof fetch;
  for (const user of ['alice@example.com', 'rita@example.com', 'aubrey@example.com']) {
    tokens[user] = (await stack.cli(await stack.login(user), ['token'])).stdout.trim();
  }
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  storePg?.stop();
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
          status: 403,
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
    const request = (policy: string) =>
      call(rita, 'POST', '/v1/access-requests', {
        connection: 'prod-db',
        policy,
        duration: '1h',
        reason: 'INC-5',
      });
    const own = await request('reviewers');
    expect(own.status).toBe(403);
    expect(message(own)).toMatch(/not requestable/);
    const filed = await request('break-glass');
    expect(filed.status).toBe(201);
    expect(filed.body).toMatchObject({ policy: 'break-glass', status: 'pending' });
  });
});

/** A GET as a browser without JavaScript would make it (no redirects followed), from `localAddress`. */
function browserGet(path: string, options: { cookie?: string; agent?: Agent } = {}) {
  return new Promise<{ status: number; location?: string; cookies: string[]; body: string }>(
    (resolve, reject) => {
      const request = httpsRequest(
        new URL(path, stack.gatewayUrl),
        {
          ca: readFileSync(stack.certs!.caCert),
          agent: options.agent,
          headers: options.cookie ? { cookie: options.cookie } : {},
        },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => {
            body += chunk.toString('utf8');
          });
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              location: response.headers.location,
              cookies: response.headers['set-cookie'] ?? [],
              body,
            }),
          );
        },
      );
      request.on('error', reject);
      request.end();
    },
  );
}

describe('the console sign-in without a token', () => {
  it("a flood of sign-ins from one source pushes out its own, not a person's (found 2026-12-02, fifth round)", async () => {
    // A person starts signing in: the state is in the sign-in cookie and in the IdP's address.
    const begin = await browserGet('/console/login?return=/console/inbox');
    expect(begin.status).toBe(302);
    const cookie = begin.cookies[0]!.split(';')[0]!;
    const state = new URL(begin.location!).searchParams.get('state')!;

    // Meanwhile another source (Linux routes all of 127/8 to the loopback) starts 1,001 sign-ins, in about a
    // second, without a token; it used to push every pending sign-in out, so nobody could sign in.
    const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: '127.0.0.2' });
    try {
      const flood = await Promise.all(
        Array.from({ length: 1001 }, () => browserGet('/console/login', { agent })),
      );
      expect(flood.every((r) => r.status === 302)).toBe(true);
    } finally {
      agent.destroy();
    }

    // The person comes back from the IdP: the sign-in is still theirs (the made-up code then fails at the
    // IdP, which shows it got that far), not "expired or started elsewhere".
    const back = await browserGet(`/console/callback?state=${state}&code=made-up`, { cookie });
    expect(back.status).toBe(302);
    const key = new URL(back.location!, stack.gatewayUrl).searchParams.get('error');
    const why = JSON.parse((await browserGet(`/console/session?error=${key}`)).body) as {
      sign_in_error: string;
    };
    expect(why.sign_in_error).toMatch(/^Signing in failed at the identity provider/);
  });
});

describe('live event streams with a valid token', () => {
  it('one identity holds at most 20 streams (429); others still get theirs; a closed one frees its place (found 2026-12-02, fifth round)', async () => {
    const open = async (who: string) => {
      const abort = new AbortController();
      const response = await fetchCa(`${stack.gatewayUrl}/v1/events`, {
        headers: { authorization: `Bearer ${tokens[who]}` },
        signal: abort.signal,
      });
      return { status: response.status, response, close: () => abort.abort() };
    };
    const alice = 'alice@example.com';
    const held = [];
    for (let i = 0; i < 20; i++) held.push(await open(alice));
    expect(held.map((h) => h.status)).toEqual(Array(20).fill(200));
    const over = await open(alice);
    expect(over.status).toBe(429);
    expect(
      ((await over.response.json()) as { error: { code: string; message: string } }).error,
    ).toMatchObject({
      code: 'too_many_requests',
      message: expect.stringMatching(/close one \(a console tab\)/),
    });
    const other = await open('rita@example.com');
    expect(other.status).toBe(200);
    other.close();
    held.pop()!.close();
    await new Promise((r) => setTimeout(r, 300));
    const again = await open(alice);
    expect(again.status).toBe(200);
    for (const h of [...held, again]) h.close();
  });
});

describe('the MCP endpoint with a valid token', () => {
  /** One JSON-RPC request; the answer whether it came as JSON or as one server-sent event. */
  async function rpc(body: unknown, session?: string) {
    const response = await fetchCa(`${stack.gatewayUrl}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${tokens['alice@example.com']}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
        ...(session ? { 'mcp-session-id': session } : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    const data = text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5))
      .join('');
    return {
      session: response.headers.get('mcp-session-id') ?? undefined,
      message: JSON.parse(data || text || '{}') as {
        result?: { isError?: boolean; content: { text: string }[] };
        error?: unknown;
      },
    };
  }

  it("a tool named after Object.prototype's keys is no tool, and the call is recorded (found 2026-12-02, fifth round)", async () => {
    const { session } = await rpc({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'probe', version: '1' },
      },
    });
    await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' }, session);
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      // These used to find Object.prototype's property as the tool, throw a TypeError outside the tool's
      // error handling (JSON-RPC -32603 "inputSchemas(...)[name].safeParse is not a function") and skip
      // the call's mcp.tool record, which every call, refused or not, gets before its answer.
      const { message } = await rpc(
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: {} } },
        session,
      );
      expect(message.error).toBeUndefined();
      expect(message.result?.isError).toBe(true);
      expect(message.result?.content[0]?.text).toMatch(new RegExp(`^no tool "${name}" \\(tools: `));
    }
    const exported = await fetchCa(`${stack.gatewayUrl}/v1/export?since=1h&format=jsonl`, {
      headers: { authorization: `Bearer ${tokens['aubrey@example.com']}` },
    });
    const tools = parseExport(await exported.text())
      .records.filter((r) => r.type === 'mcp.tool')
      .map((r) => [r.data?.tool, r.data?.error]);
    expect(tools).toEqual(
      expect.arrayContaining(
        ['__proto__', 'constructor', 'toString', 'hasOwnProperty'].map((n) => [n, true]),
      ),
    );
  });
});

describe('text from the caller in the audit store', () => {
  it('a NUL anywhere in a JSON body is refused 400, named, before any service sees it (a PostgreSQL store cannot hold it)', async () => {
    const rita = 'rita@example.com';
    const request = {
      connection: 'prod-db',
      policy: 'break-glass',
      duration: '1h',
      reason: 'INC-\u00009',
    };
    for (const [path, body] of [
      ['/v1/access-requests', request],
      ['/v1/policy/test', { connection: 'prod-db', sql: 'select 1 -- \u0000' }],
      ['/v1/policy/test', { connection: 'prod-db', sql: 'select 1', 'x\u0000': 1 }],
    ] as const) {
      const r = await call(rita, 'POST', path, body);
      expect(r.status, path).toBe(400);
      expect(message(r)).toBe('request body text may not contain NUL (\\u0000)');
    }
    // The six characters \u0000 (an escaped backslash) are text like any other.
    const plain = await call(rita, 'POST', '/v1/policy/test', {
      connection: 'prod-db',
      sql: "select '\\u0000'",
    });
    expect(plain.status).toBe(200);
  });

  it("a NUL in a tunnel's connection name is recorded, and does not fail other records (found 2026-12-02, fifth round)", async () => {
    const home = await stack.login('rita@example.com');
    // A tunnel to `/v1/tunnel/%00…` is refused 404 and recorded (auth.failed) with the name asked for. With
    // a PostgreSQL store that record failed its whole batch (text cannot hold NUL): it was lost, every
    // statement committed with it was refused "the audit log cannot be written", /readyz said 503.
    const poison = () =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${stack.gatewayUrl.replace('https', 'wss')}/v1/tunnel/%00nul`, {
          headers: { authorization: `Bearer ${tokens['alice@example.com']}` },
          ca: readFileSync(stack.certs!.caCert),
        });
        ws.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        ws.on('error', () => resolve(0));
      });
    const runs = Array.from({ length: 6 }, (_, i) =>
      stack.cli(home, ['exec', 'prod-db', '-c', `select ${i} as n`]),
    );
    const refused: Promise<number>[] = [];
    for (let round = 0; round < 20; round++) {
      refused.push(...Array.from({ length: 10 }, poison));
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(new Set(await Promise.all(refused))).toEqual(new Set([404]));
    for (const run of await Promise.all(runs)) expect(run.code, run.stderr).toBe(0);
    expect((await fetchCa(`${stack.gatewayUrl}/readyz`)).status).toBe(200);

    const exported = await fetchCa(`${stack.gatewayUrl}/v1/export?since=1h&format=jsonl`, {
      headers: { authorization: `Bearer ${tokens['aubrey@example.com']}` },
    });
    const failed = parseExport(await exported.text()).records.filter(
      (r) => r.type === 'auth.failed' && r.identity?.subject === 'alice@example.com',
    );
    expect(failed).toHaveLength(200);
    expect(failed[0]!.connection).toBe('\ufffdnul');
    expect((await stack.cli(await stack.login('aubrey@example.com'), ['audit', 'verify'])).code).toBe(0);
  });
});
