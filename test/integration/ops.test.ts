/**
 * Running it like production, with real parts: /healthz and /readyz on both listeners, /metrics scraped
 * and parsed after real traffic, and SIGTERM's drain — readiness false at once, new tunnels refused with a
 * message the client shows, a session that finishes within shutdown.grace sees no error, one that does
 * not is ended with 57P01, and the log ends with gateway.stopped under a signed checkpoint.
 */
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../gateway/store/index.js';
import { parseScrape, promtoolCheck, scrape } from '../harness/metrics.js';
import { freePort } from '../harness/ports.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const GRACE_S = 8;

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('health, readiness, metrics and drain', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let diagnostics: string;
  beforeAll(async () => {
    const port = await freePort();
    diagnostics = `http://127.0.0.1:${port}`;
    stack = await startStack({
      tls: false,
      extraConfig: `diagnostics:\n  listen: 127.0.0.1:${port}\nshutdown:\n  grace: ${GRACE_S}s\n`,
    });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('answers /healthz and /readyz on the API listener and the diagnostics listener', async () => {
    for (const base of [stack.gatewayUrl, diagnostics]) {
      const health = await getJson(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(health.body.ok).toBe(true);
      const ready = await getJson(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      expect(Object.keys(ready.body.checks as object).sort()).toEqual([
        'draining',
        'jwks',
        'signing_key',
        'store',
      ]);
    }
    // Metrics only on the diagnostics listener: the API listener faces clients.
    expect((await fetch(`${stack.gatewayUrl}/metrics`)).status).toBe(404);
  });

  it('/metrics, scraped and parsed after real traffic, shows the counters moving', async () => {
    const before = await scrape(`${diagnostics}/metrics`);
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    for (let i = 0; i < 5; i++) await client.query('select id, name from customers limit 2');
    await expect(client.query("select pg_read_file('/etc/passwd')")).rejects.toThrow(/denied/);
    await client.end();
    // A forged token: one authentication failure, by reason.
    await fetch(`${stack.gatewayUrl}/v1/whoami`, { headers: { authorization: 'Bearer not-a-jwt' } });

    const after = await scrape(`${diagnostics}/metrics`);
    const moved = (name: string, labels?: Record<string, string>) =>
      after.value(name, labels) - (before.families.has(name) ? before.value(name, labels) : 0);
    const read = { connection: 'prod-db', class: 'read', decision: 'allow' };
    expect(moved('hoop_statements_total', read)).toBeGreaterThanOrEqual(5);
    expect(
      moved('hoop_statements_total', { connection: 'prod-db', decision: 'deny' }),
    ).toBeGreaterThanOrEqual(1);
    expect(moved('hoop_sessions_opened_total', { connection: 'prod-db' })).toBeGreaterThanOrEqual(1);
    expect(moved('hoop_tunnels_opened_total')).toBeGreaterThanOrEqual(1);
    expect(moved('hoop_auth_failures_total', { reason: 'malformed' })).toBe(1);
    expect(moved('hoop_audit_records_total', { type: 'statement', result: 'ok' })).toBeGreaterThanOrEqual(6);
    expect(moved('hoop_tunnel_received_bytes_total')).toBeGreaterThan(0);
    expect(moved('hoop_tunnel_sent_bytes_total')).toBeGreaterThan(0);
    expect(after.count('hoop_gate_duration_seconds', { phase: 'query' })).toBeGreaterThanOrEqual(6);
    expect(after.count('hoop_audit_append_duration_seconds')).toBeGreaterThan(0);
    expect(after.count('hoop_audit_batch_records')).toBeGreaterThan(0);
    expect(after.count('hoop_upstream_connect_duration_seconds', { connection: 'prod-db' })).toBeGreaterThan(
      0,
    );
    expect(after.value('hoop_audit_chain_head')).toBeGreaterThan(0);
    expect(after.value('hoop_approvals_pending')).toBe(0);
    expect(after.value('hoop_ready')).toBe(1);
    // Process and event-loop metrics come along, with the same prefix.
    expect(after.value('hoop_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(after.families.has('hoop_nodejs_eventloop_lag_seconds')).toBe(true);
    // Bounded labels: no statement text, no subject (not configured).
    expect(after.text).not.toMatch(/customers|alice/);
    // Prometheus's own linter finds nothing in ours (prom-client's three *_active_*_total gauges aside).
    const lint = promtoolCheck(after.text);
    const ours = lint?.output.split('\n').filter((l) => l && !/^hoop_nodejs_active_\w+_total /.test(l));
    if (lint) expect(ours).toEqual([]);
  });

  it('SIGTERM: not ready at once, new tunnels refused, sessions drain within the grace, the rest get 57P01', async () => {
    // One session finishes within the grace period; one stays idle and is ended at its end.
    const finishing = new pg.Client({ connectionString: tunnel.url });
    const idle = new pg.Client({ connectionString: tunnel.url });
    const idleEnded = new Promise<Error & { code?: string }>((resolve) => idle.on('error', resolve));
    await finishing.connect();
    await idle.connect();
    await finishing.query('begin');
    await finishing.query('select count(*) from customers');

    const gateway = stack.gatewayProcess();
    const exited = once(gateway, 'exit');
    gateway.kill('SIGTERM');
    await waitFor('/readyz to say 503', async () => (await fetch(`${diagnostics}/readyz`)).status === 503);
    const ready = await getJson(`${stack.gatewayUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.failed).toEqual(['draining']);
    expect((await getJson(`${diagnostics}/healthz`)).status).toBe(200);
    expect(parseScrape(await (await fetch(`${diagnostics}/metrics`)).text()).value('hoop_draining')).toBe(1);

    // A new connection through the same hoopctl connect: refused, with the reason psql would print.
    const late = new pg.Client({ connectionString: tunnel.url });
    await expect(late.connect()).rejects.toThrow(/shutting down.*connect again/);

    // The open session carries on and finishes without an error.
    await finishing.query('select count(*) from orders');
    await finishing.query('commit');
    await finishing.end();

    const error = await idleEnded;
    expect(error.code).toBe('57P01');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(stack.gatewayLog()).toMatch(/"drain":"grace_expired"/);

    // The last batch was committed and the head sealed: the last record is gateway.stopped, under a checkpoint.
    const store = await openStore({ path: join(dirname(stack.configFile), 'hoop-data') });
    try {
      const [last] = await store.listRecords({ descending: true, limit: 1 });
      expect(last?.type).toBe('gateway.stopped');
      expect(last?.data).toMatchObject({ signal: 'SIGTERM', drain: 'grace_expired', sessions_ended: 1 });
      const checkpoints = await store.listCheckpoints();
      expect(checkpoints.at(-1)?.seq).toBe(last?.seq);
    } finally {
      await store.close();
    }
  });
});
