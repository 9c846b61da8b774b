/**
 * The walking skeleton, end to end with real parts: device-flow login through the real IdP pages,
 * `hoopctl connect`, then psql and node-postgres through the tunnel to a real PostgreSQL.
 */
import { spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScramClient } from '../../src/shared/scram.js';
import { readLargeResultSlowly } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

function psql(url: string, sql: string, extraEnv: Record<string, string> = {}) {
  return spawnSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], {
    encoding: 'utf8',
    env: { ...process.env, ...extraEnv },
    timeout: 30_000,
  });
}

describe('login → connect → psql through the gateway', () => {
  let stack: Stack;
  let alice: string;
  let tunnel: Tunnel;

  beforeAll(async () => {
    stack = await startStack();
    alice = await stack.login('alice@example.com');
    tunnel = await stack.connect(alice);
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('whoami shows the identity from the device-flow login', async () => {
    const result = await stack.cli(alice, ['whoami', '--json']);
    expect(result.code).toBe(0);
    const me = JSON.parse(result.stdout);
    expect(me.identity.subject).toBe('alice@example.com');
    expect(me.identity.groups).toContain('engineering');
    expect(me.identity.kind).toBe('human');
  });

  it('psql returns rows from the real database', () => {
    const result = psql(tunnel.url, 'select count(*) from customers');
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe('5');
  });

  it('node-postgres runs simple and parameterised queries', async () => {
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      const simple = await client.query('select name from customers order by id limit 2');
      expect(simple.rows.map((r) => r.name)).toEqual(['Ada Example', 'Brian Sample']);
      const extended = await client.query('select id, country from customers where id = $1', [3]);
      expect(extended.rows).toEqual([{ id: 3, country: 'FR' }]);
    } finally {
      await client.end();
    }
  });

  it('a large result read by a client that keeps stopping arrives byte for byte as from the database', async () => {
    const through = await readLargeResultSlowly(tunnel.url);
    const expected = await readLargeResultSlowly(stack.pg.url('shop'));
    expect(through.length).toBe(20000);
    expect(through).toEqual(expected);
  }, 120_000);

  it('refuses a wrong local password', () => {
    const wrong = tunnel.url.replace(`:${encodeURIComponent(tunnel.password)}@`, ':not-the-password@');
    const result = psql(wrong, 'select 1');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/password authentication failed/);
  });

  it('never lets the database password reach the client side', async () => {
    // A raw client: every byte the gateway sends back during login and a few queries.
    const received: Buffer[] = [];
    const socket = netConnect({ host: '127.0.0.1', port: tunnel.port });
    socket.on('data', (c: Buffer) => received.push(c));
    const waitFor = async (predicate: () => boolean) => {
      for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 25));
    };
    const all = () => Buffer.concat(received);
    await new Promise((r) => socket.once('connect', r));
    socket.write(serialize.startup({ user: 'hoop', database: 'prod-db' }));
    await waitFor(() => all().includes(Buffer.from('SCRAM-SHA-256')));
    const scram = new ScramClient(tunnel.password);
    socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
    await waitFor(() => all().indexOf(Buffer.from('r=')) > 0);
    const serverFirst = /r=[^\0]*/.exec(all().toString('latin1'))![0];
    const marker = all().length;
    socket.write(
      serialize.sendSCRAMClientFinalMessage(scram.final(serverFirst.replace(/[^\x20-\x7e].*$/s, ''))),
    );
    await waitFor(() => all().subarray(marker).includes(Buffer.from('Z')));
    socket.write(serialize.query("select current_user, current_setting('application_name'); show all"));
    await waitFor(() => all().toString('latin1').includes('SHOW'));
    socket.end(serialize.end());
    const text = all().toString('latin1');
    expect(text).toContain('hoop_gateway'); // we did get real answers
    expect(text).not.toContain(stack.dbPassword);
    // Nor does anything the CLI prints.
    const me = await stack.cli(alice, ['whoami', '--json']);
    expect(me.stdout + me.stderr).not.toContain(stack.dbPassword);
  });

  it('refuses forged, tampered and alg:none tokens with a clear message (exit 3)', async () => {
    const realToken = await stack.cli('/nonexistent-home', ['whoami'], { env: stack.ciEnv() });
    expect(realToken.code).toBe(0);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'http://127.0.0.1:1',
      sub: 'mallory',
      aud: stack.gatewayUrl,
      exp: now + 600,
      groups: ['ci-deploy'],
    };
    const cases: [string, string, RegExp][] = [
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, /not accepted|issuer/],
      ['garbage', 'not-a-jwt', /malformed|not a JWT|token/i],
      ['unknown issuer', `${b64({ alg: 'RS256', kid: 'x' })}.${b64(claims)}.c2ln`, /not accepted/],
    ];
    for (const [name, token, message] of cases) {
      const result = await stack.cli('/nonexistent-home', ['whoami'], { env: { HOOPCTL_ID_TOKEN: token } });
      expect(result.code, name).toBe(3);
      expect(result.stderr, name).toMatch(message);
    }
  });
});
