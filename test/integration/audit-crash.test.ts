/**
 * Write-ahead, fail closed, on the real data path: pgbench through `hoopctl connect` as a CI identity,
 * the gateway killed with SIGKILL under load, and afterwards every statement PostgreSQL executed
 * (log_statement=all) has its `statement` record. Then a store that cannot be written: the next
 * statement fails with SQLSTATE 58030 and never reaches PostgreSQL.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OWN_QUERY_MARK } from '../../gateway/contracts/own-query.js';
import type { AuditRecord } from '../../src/shared/audit.js';
import { startPostgres } from '../harness/postgres.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the gateway's login role ran, from the server log (log_line_prefix '%u|'), normalised. */
function executedStatements(stack: Stack): string[] {
  const log = readFileSync(join(stack.pg.dataDir, '..', 'postgres.log'), 'utf8');
  const texts: string[] = [];
  for (const line of log.split('\n')) {
    const m = /^hoop_gateway\|LOG: {2}statement: (.*)$/.exec(line);
    // The gateway's own queries (catalog, a session's settings) are marked, and not a client's.
    if (m && !m[1]!.startsWith(OWN_QUERY_MARK)) texts.push(normalise(m[1]!));
  }
  return texts;
}
const normalise = (text: string) => text.trim().replace(/;+$/, '').trim();

describe('write-ahead: a gateway killed under pgbench load lost no record of what ran', () => {
  let stack: Stack;
  let aubrey: string;
  let tunnel: Tunnel;
  const out = mkdtempSync(join(tmpdir(), 'hoop-audit-crash-'));

  beforeAll(async () => {
    stack = await startStack({ pgSettings: { log_statement: "'all'", log_line_prefix: "'%u|'" } });
    aubrey = await stack.login('aubrey@example.com');
    tunnel = await stack.connect(mkdtempSync(join(tmpdir(), 'ci-home-')), 'prod-db', { env: stack.ciEnv() });
  }, 120_000);
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  async function statementRecords(): Promise<AuditRecord[]> {
    const file = join(out, `export-${Date.now()}.jsonl`);
    const exp = await stack.cli(aubrey, ['sessions', 'export', '--since', '1h', '-o', file]);
    if (exp.code !== 0) console.error('gateway log:', stack.gatewayLog().slice(-6000));
    expect(exp.code, exp.stderr).toBe(0);
    const publicKey = join(stack.configFile, '..', 'hoop-data', 'audit-signing-key.pub.pem');
    const verify = await stack.cli(aubrey, ['audit', 'verify', file, '--public-key', publicKey]);
    expect(verify.code, verify.stderr).toBe(0);
    return readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { record?: AuditRecord })
      .flatMap((l) => (l.record ? [l.record] : []));
  }

  it('pgbench -i through the gateway, then -c 4 under load, kill -9: every executed statement is recorded', async () => {
    const env = { ...process.env, PGPASSWORD: tunnel.password };
    const init = spawnSync('pgbench', ['-i', '-I', 'dtgp', '-s', '1', tunnel.url], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    expect(init.status, init.stderr).toBe(0);

    // -T is only a bound: the kill comes at 100 updates, however slow a loaded machine makes them.
    const bench: ChildProcess = spawn('pgbench', ['-n', '-c', '4', '-T', '60', tunnel.url], {
      env,
      stdio: 'ignore',
    });
    const benchExit = new Promise<number>((r) => bench.once('exit', (code) => r(code ?? -1)));
    // Kill the gateway once the load is well under way (progress, not time, decides).
    const updates = () =>
      executedStatements(stack).filter((t) => t.startsWith('UPDATE pgbench_accounts')).length;
    while (updates() < 100 && bench.exitCode === null) await sleep(50);
    const atKill = { updates: updates(), benchExited: bench.exitCode !== null };
    await stack.restartGateway(); // SIGKILL, then a fresh gateway on the same store
    const code = await benchExit;
    expect(
      code,
      `pgbench should have lost its connections to the killed gateway (${JSON.stringify(atKill)})`,
    ).not.toBe(0);

    const executed = executedStatements(stack);
    const pgbenchRan = executed.filter((t) => /pgbench_/.test(t));
    expect(pgbenchRan.length).toBeGreaterThan(500);

    const recorded = new Map<string, number>();
    for (const r of await statementRecords()) {
      if (r.type !== 'statement' || r.data.decision !== 'allow') continue;
      const text = normalise(String(r.data.text));
      recorded.set(text, (recorded.get(text) ?? 0) + 1);
    }
    const executedCounts = new Map<string, number>();
    for (const t of executed) executedCounts.set(t, (executedCounts.get(t) ?? 0) + 1);
    const missing = [...executedCounts].filter(([t, n]) => (recorded.get(t) ?? 0) < n);
    expect(missing).toEqual([]);
    // And the chain the killed gateway left behind verifies online on the new one.
    const online = await stack.cli(aubrey, ['audit', 'verify', '--json']);
    expect(online.code, online.stderr).toBe(0);
    // One chain across the kill: the head journal vouched for the unsealed tail the killed gateway left.
    expect(JSON.parse(online.stdout)).toMatchObject({ ok: true, chains: [{ chain: 'main', first_seq: 1 }] });
  }, 180_000);

  it('fails closed: while the store cannot be written, a statement fails with 58030 and never reaches Postgres', async () => {
    tunnel.stop();
    tunnel = await stack.connect(mkdtempSync(join(tmpdir(), 'ci-home-')), 'prod-db', { env: stack.ciEnv() });
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      await client.query('select 1'); // the session is open and recording
      // Another process holds the store's write lock (a backup, a stuck replica): appends cannot commit.
      const holder = new Database(join(stack.configFile, '..', 'hoop-data', 'hoop.db'));
      // The gateway writes too (readiness probe, checkpoints): wait for the lock like any other writer.
      holder.exec('PRAGMA busy_timeout = 10000');
      holder.exec('BEGIN IMMEDIATE');
      let failure: (Error & { code?: string; routine?: string }) | undefined;
      try {
        await client.query("select 'fail-closed-marker'");
      } catch (err) {
        failure = err as typeof failure;
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      expect(failure?.code).toBe('58030');
      expect(failure?.message).toMatch(/audit log cannot be written/);
      expect(executedStatements(stack).some((t) => t.includes('fail-closed-marker'))).toBe(false);
      // The store is back: the same session goes on, recorded.
      const again = await client.query("select 'after-recovery' as x");
      expect(again.rows).toEqual([{ x: 'after-recovery' }]);
    } finally {
      await client.end().catch(() => undefined);
    }
    const records = await statementRecords();
    expect(
      records.some((r) => r.type === 'statement' && String(r.data.text).includes('after-recovery')),
    ).toBe(true);
    expect(
      records.some((r) => String(r.data.text ?? '').includes('fail-closed-marker') && r.type === 'statement'),
    ).toBe(false);
  }, 120_000);
});

describe('fail closed on the PostgreSQL store: the store database goes away', () => {
  let stack: Stack;
  let storePg: Awaited<ReturnType<typeof startPostgres>>;
  let tunnel: Tunnel;

  beforeAll(async () => {
    storePg = await startPostgres();
    storePg.psql('create database hoop_audit');
    stack = await startStack({
      pgSettings: { log_statement: "'all'", log_line_prefix: "'%u|'" },
      store: `  url: ${storePg.url('hoop_audit')}`,
    });
    tunnel = await stack.connect(mkdtempSync(join(tmpdir(), 'ci-home-')), 'prod-db', { env: stack.ciEnv() });
  }, 120_000);
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
    storePg?.stop();
  });

  it('the next statement fails with 58030 and nothing reaches Postgres', async () => {
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      expect((await client.query("select 'recorded-in-postgres' as x")).rows).toEqual([
        { x: 'recorded-in-postgres' },
      ]);
      storePg.stop();
      const failure = await client.query("select 'pg-store-down-marker'").then(
        () => undefined,
        (err: Error & { code?: string }) => err,
      );
      expect(failure?.code, `${failure?.message}\n${stack.gatewayLog()}`).toBe('58030');
      expect(executedStatements(stack).some((t) => t.includes('pg-store-down-marker'))).toBe(false);
      expect(executedStatements(stack).some((t) => t.includes('recorded-in-postgres'))).toBe(true);
    } finally {
      await client.end().catch(() => undefined);
    }
  }, 60_000);
});
