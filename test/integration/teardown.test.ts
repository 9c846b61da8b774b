/**
 * Cancel, teardown and leaks through the whole path: Ctrl-C in psql cancels through the tunnel; a
 * dropped WebSocket (the `hoopctl connect` process killed) closes the upstream connection and rolls
 * back its open transaction; a database that drops the gateway gives the client a proper error;
 * many connect/disconnect cycles leave no file descriptors behind (bench/leak.mjs runs 10,000).
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES, findPids, openFds, pidsWithEnv, statusKb, waitFor } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const CYCLES = 300;

describe('cancel, teardown and leaks', () => {
  let stack: Stack;
  let alice: string;
  let tunnel: Tunnel;
  let gatewayPid: number;

  const backends = (app: string) =>
    Number(stack.pg.psql(`select count(*) from pg_stat_activity where application_name = '${app}'`).trim());

  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES });
    alice = await stack.login('alice@example.com');
    tunnel = await stack.connect(alice);
    stack.pg.psql(
      'create table public.teardown (id int); alter table public.teardown owner to hoop_gateway',
      'shop',
    );
    [gatewayPid] = findPids('hoop-gateway', stack.configFile);
    expect(gatewayPid).toBeGreaterThan(0);
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('Ctrl-C in psql cancels a running statement through the tunnel', async () => {
    const started = Date.now();
    const child = spawn('psql', ['-X', tunnel.url, '-c', 'select pg_sleep(60)'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    await waitFor(
      () =>
        Number(
          stack.pg.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)'").trim(),
        ) === 1,
      15_000,
      'the statement to run',
    );
    const sent = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    // Functional, not timed: psql ends long before the 60 s statement would have.
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/canceling statement due to user request/);
    console.log(
      `cancel: psql ended ${Date.now() - sent} ms after SIGINT (${Date.now() - started} ms in all)`,
    );
  });

  it('a dropped WebSocket closes the upstream connection and rolls back the open transaction', async () => {
    // A home of its own, so the process to kill is told apart from this file's shared tunnel.
    const home = await stack.login('alice@example.com');
    const own = await stack.connect(home);
    const client = new pg.Client({ connectionString: own.url, application_name: 'drop-ws' });
    client.on('error', () => {});
    await client.connect();
    await client.query('begin');
    await client.query('insert into teardown values (1)');
    expect(backends('drop-ws')).toBe(1);
    // kill -9 the hoopctl connect process carrying this client's WebSocket: no close frame, no goodbye.
    const pids = pidsWithEnv('HOOPCTL_HOME', home, findPids('hoopctl', 'connect'));
    expect(pids).toHaveLength(1);
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor(() => backends('drop-ws') === 0, 15_000, 'the upstream backend to go');
    expect(stack.pg.psql('select count(*) from public.teardown', 'shop').trim()).toBe('0');
    await client.end().catch(() => {});
    own.stop();
  });

  it('a database that drops the gateway gives the client a proper error', async () => {
    const client = new pg.Client({ connectionString: tunnel.url, application_name: 'drop-db' });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    await client.connect();
    await client.query('select 1');
    stack.pg.psql(
      "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'drop-db'",
    );
    await waitFor(() => errors.length > 0, 10_000, 'the client to hear');
    expect((errors[0] as Error & { code?: string }).code).toBe('57P01');
    expect(errors[0]!.message).toMatch(/terminating connection due to administrator command/);
    await client.end().catch(() => {});
  });

  it(`leaves no file descriptors or memory behind after ${CYCLES} connect/disconnect cycles`, async () => {
    const cycle = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const c = new pg.Client({ connectionString: tunnel.url });
        await c.connect();
        if (i % 10 === 0) await c.query('select 1');
        await c.end();
      }
    };
    await cycle(30); // warm up: caches, JIT, pools
    const fdsBefore = openFds(gatewayPid);
    const rssBefore = statusKb(gatewayPid, 'VmRSS');
    // Two at a time, as two cores allow.
    await Promise.all([cycle(CYCLES / 2), cycle(CYCLES / 2)]);
    await waitFor(
      () => openFds(gatewayPid) <= fdsBefore + 2,
      15_000,
      `gateway fds to settle (${openFds(gatewayPid)})`,
    );
    const rssAfter = statusKb(gatewayPid, 'VmRSS');
    console.log(
      `leak check: ${CYCLES} cycles, fds ${fdsBefore} → ${openFds(gatewayPid)}, RSS ${rssBefore} → ${rssAfter} kB`,
    );
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024);
    const leftover = Number(
      stack.pg.psql("select count(*) from pg_stat_activity where usename = 'hoop_gateway'").trim(),
    );
    expect(leftover).toBe(0);
  });
});
