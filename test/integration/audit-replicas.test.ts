/**
 * Three gateway processes on one PostgreSQL store (issue 16, items 1 and 2), with real clients:
 * each replica appends to its own hash chain at the same time and `audit verify` passes over all of them;
 * an approval requested through one replica is released by a decision made through another; a replica
 * killed with SIGKILL while it holds a statement for approval has that request withdrawn by the others
 * (recorded, and refused to a late approver), and its unsealed chain is sealed by their references;
 * revoking an identity through one replica ends its session on another; and deleting a replica's whole
 * chain makes verification fail naming it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalListResponse } from '../../src/shared/api.js';
import type { AuditRecord, VerifyResult } from '../../src/shared/audit.js';
import { parseExport } from '../../src/shared/audit-export.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';
import { DEFAULT_POLICIES, type Replica, type Stack, startStack } from '../harness/stack.js';

const POLICIES = `${DEFAULT_POLICIES}
  - name: identity-admins
    subjects: [rita@example.com]
    admin: true
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `probe` returns something; bounds a wait, asserts no timing. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

function runPsql(url: string, sql: string) {
  const child: ChildProcess = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  return {
    child,
    done: new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('exit', (code) => resolve({ code, stdout, stderr })),
    ),
  };
}

describe('three replicas on one PostgreSQL store', () => {
  let storePg: PgServer;
  let stack: Stack;
  let gw2: Replica;
  let gw3: Replica;
  let alice: string;
  let rita: string;
  let aubrey: string;

  /** Let a home logged in through the first gateway use another replica too (same issuer, same audience). */
  const alsoFor = (home: string, url: string) => {
    const file = join(home, 'tokens.json');
    const tokens = JSON.parse(readFileSync(file, 'utf8')) as { gateways: Record<string, unknown> };
    tokens.gateways[url] = tokens.gateways[stack.gatewayUrl];
    writeFileSync(file, JSON.stringify(tokens), { mode: 0o600 });
  };
  const via = (replica: Replica) => ({ env: { HOOPCTL_GATEWAY: replica.url } });
  const verify = async (): Promise<VerifyResult> => {
    const result = await stack.cli(aubrey, ['audit', 'verify', '--json']);
    return JSON.parse(result.stdout) as VerifyResult;
  };
  const approvals = async (home: string, replica?: Replica) => {
    const result = await stack.cli(home, ['approvals', '--all', '--json'], replica && via(replica));
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as ApprovalListResponse).approvals;
  };

  beforeAll(async () => {
    storePg = await startPostgres();
    storePg.psql('CREATE DATABASE hoop_store');
    stack = await startStack({
      policies: POLICIES,
      store: `  url: ${storePg.url('hoop_store')}`,
      replicaId: 'gw-1',
      // Short for the test; on a loaded machine a replica's event loop can stall for seconds, and one
      // presumed lost has its waiting approvals withdrawn: production keeps the 10 s default.
      extraConfig: 'replica: { heartbeat: 1s, lost_after: 6s }',
    });
    [gw2, gw3] = await Promise.all([stack.startReplica('gw-2'), stack.startReplica('gw-3')]);
    [alice, rita, aubrey] = await Promise.all([
      stack.login('alice@example.com'),
      stack.login('rita@example.com'),
      stack.login('aubrey@example.com'),
    ]);
    for (const home of [alice, rita, aubrey]) for (const r of [gw2, gw3]) alsoFor(home, r.url);
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
    storePg?.stop();
  });

  it('appends through three replicas at once, each to its own chain; verify passes over all chains', {
    timeout: 180_000,
  }, async () => {
    const bot = mkdtempSync(join(tmpdir(), 'hoop-bot-'));
    const script = Array.from({ length: 20 }, (_, i) => `select ${i};`).join('\n');
    const runs = await Promise.all(
      [undefined, gw2, gw3].map((r) =>
        stack.cli(bot, ['exec', 'prod-db', '-c', script], {
          env: { ...stack.ciEnv(), ...(r ? via(r).env : {}) },
          timeoutMs: 150_000,
        }),
      ),
    );
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const result = await verify();
    expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
    const chains = result.ok ? result.chains : [];
    expect(chains.map((c) => c.chain)).toEqual(['gw-1', 'gw-2', 'gw-3']);
    for (const c of chains) expect(c.count).toBeGreaterThan(20);
    // An export of all chains, merged in time order, verifies offline with the replicas' (shared) key.
    const exp = await stack.cli(aubrey, ['sessions', 'export', '--since', '1h']);
    const file = parseExport(exp.stdout);
    expect(new Set(file.records.map((r) => r.chain))).toEqual(new Set(['gw-1', 'gw-2', 'gw-3']));
    const times = file.records.map((r) => r.time);
    expect(times).toEqual([...times].sort());
  });

  it('releases a statement held on one replica when a reviewer approves through another', async () => {
    const tunnel = await stack.connect(alice, 'prod-db', via(gw2));
    try {
      const psql = runPsql(tunnel.url, 'delete from orders where id = 2');
      const request = await eventually('the request', async () =>
        (await approvals(rita, gw3)).find((a) => a.statement.includes('id = 2') && a.status === 'pending'),
      );
      const approved = await stack.cli(rita, ['approve', request.id], via(gw3));
      expect(approved.code, approved.stderr).toBe(0);
      const result = await psql.done;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/approval #\d+ granted/);
    } finally {
      tunnel.stop();
    }
  });

  it('withdraws what a killed replica held, records it, refuses a late approval; its chain is sealed by the others', async () => {
    const tunnel = await stack.connect(alice, 'prod-db', via(gw2));
    const psql = runPsql(tunnel.url, 'delete from orders where id = 3');
    const request = await eventually('the request', async () =>
      (await approvals(rita)).find((a) => a.statement.includes('id = 3') && a.status === 'pending'),
    );
    await gw2.kill('SIGKILL');
    const started = Date.now();
    const withdrawn = await eventually('the withdrawal', async () =>
      (await approvals(rita)).find((a) => a.id === request.id && a.status === 'withdrawn'),
    );
    const seconds = (Date.now() - started) / 1000;
    console.log(`request #${withdrawn.id} withdrawn ${seconds.toFixed(1)} s after its replica was killed`);
    // The client's own gateway is gone: its connection broke (it never ran the statement).
    const result = await psql.done;
    expect(result.code).not.toBe(0);
    tunnel.stop();
    expect(stack.pg.psql('select count(*) from orders where id = 3', 'shop').trim()).toBe('1');
    const late = await stack.cli(rita, ['approve', request.id]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/withdrawn/);
    // On the record: the loss of the replica, and the withdrawal, with the reason.
    const exp = await stack.cli(aubrey, ['sessions', 'export', '--since', '1h']);
    const records: AuditRecord[] = parseExport(exp.stdout).records;
    expect(records.find((r) => r.type === 'replica.lost')).toMatchObject({
      data: { replica: 'gw-2', chain: 'gw-2' },
    });
    expect(
      records.find(
        (r) => r.type === 'approval.withdrawn' && r.data.approval_id === Number(request.id) && r.data.replica,
      ),
    ).toMatchObject({
      data: { replica: 'gw-2', reason: expect.stringMatching(/replica gw-2.*stopped responding/) },
    });
    // The killed replica's unsealed tail is covered by the survivors' references: verify still passes.
    expect(await verify()).toMatchObject({ ok: true });
  });

  it('revoking an identity through one replica ends its session on another', async () => {
    const bot = mkdtempSync(join(tmpdir(), 'hoop-bot-'));
    const tunnel = await stack.connect(bot, 'prod-db', { env: { ...stack.ciEnv(), ...via(gw3).env } });
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    const ended = new Promise<number>((resolve) => {
      client.on('error', () => resolve(Date.now()));
      client.on('end', () => resolve(Date.now()));
    });
    try {
      await client.query('select 1');
      const at = Date.now();
      const revoke = await stack.cli(rita, ['identities', 'revoke', 'ci-bot', '--reason', 'replica test']);
      expect(revoke.code, revoke.stderr).toBe(0);
      const endedAt = await Promise.race([ended, sleep(20_000).then(() => undefined)]);
      expect(endedAt, 'the session on gw-3 should have been ended').toBeDefined();
      console.log(
        `session on gw-3 ended ${((endedAt! - at) / 1000).toFixed(1)} s after the revocation on gw-1`,
      );
    } finally {
      await client.end().catch(() => undefined);
      tunnel.stop();
      await stack.cli(rita, ['identities', 'restore', 'ci-bot']);
    }
  });

  it("deleting one replica's whole chain makes verification fail naming it", async () => {
    await gw3.kill('SIGTERM'); // a clean stop: its chain is sealed, nothing alarms
    storePg.psql(
      "DELETE FROM chain_records WHERE chain = 'gw-3'; DELETE FROM chain_checkpoints WHERE chain = 'gw-3'; DELETE FROM audit_chains WHERE chain = 'gw-3';",
      'hoop_store',
    );
    const result = await stack.cli(aubrey, ['audit', 'verify']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/BROKEN: chain gw-3 .*chain gw-3 is missing/);
  });
});
