/**
 * Three gateway processes on one PostgreSQL store behind HAProxy (TCP mode, TLS end to end at the gateways,
 * deploy/haproxy/haproxy.cfg with local addresses), with real clients through `hoopctl connect`:
 * - kill -9 one replica under pgbench: the clients on the others finish untouched, new connections land on
 *   the survivors, every statement PostgreSQL executed (log_statement=all) has its record, and the log
 *   verifies (offline export and online);
 * - an approval requested through one replica and approved through another releases the statement;
 * - SIGTERM drains a replica: HAProxy stops sending it tunnels (/readyz), and its open session finishes
 *   without an error.
 * bench/replicas.mjs measures the same set-up (TPS with 1 and 3 replicas, records/s with 1 and 3 writers).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS, normaliseStatement, pgbench, startCluster } from '../../bench/lib/cluster.mjs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

type Cluster = Awaited<ReturnType<typeof startCluster>>;
type Tunnel = Awaited<ReturnType<Cluster['connect']>>;

describe('three replicas on one PostgreSQL store behind HAProxy', () => {
  let cluster: Cluster;
  let tunnel: Tunnel;
  beforeAll(async () => {
    cluster = await startCluster({ replicas: 3, grace: '30s' });
    tunnel = await cluster.connect();
  }, 120_000);
  afterAll(() => {
    tunnel?.stop();
    cluster?.stop();
  });

  it('kill -9 of one replica under pgbench: the rest carry on, and nothing that ran is unrecorded', async () => {
    const [victim, ...survivors] = cluster.gateways;
    // Six single-connection pgbench runs: HAProxy's leastconn puts two on each replica.
    const runs = Array.from({ length: 6 }, () =>
      pgbench(tunnel, ['-n', '-c', '1', '-T', '12', '-M', 'simple']),
    );
    const placed = await until('six sessions placed', async () => {
      const s = await cluster.servers();
      const open = Object.values(s).reduce((n, x) => n + x.current, 0);
      return open === 6 ? s : undefined;
    });
    expect(placed[victim.id].current).toBeGreaterThan(0);
    // Under way, then kill -9: a few transactions into the run, or a third of its time on a loaded machine.
    const third = Date.now() + 20_000 / 3;
    await until('pgbench under way', () => {
      const updates = cluster
        .executedStatements()
        .filter((t: string) => t.startsWith('UPDATE pgbench_accounts'));
      return updates.length >= 12 || Date.now() > third || undefined;
    });
    // Counted again at the kill: pgbench's own first connection (its scale check) may have been among
    // the six placed above, and closed since.
    const onVictim = (await cluster.servers())[victim.id].current;
    expect(onVictim).toBeGreaterThan(0);
    victim.process.kill('SIGKILL');
    const results = await Promise.all(runs);
    const failed = results.filter((r) => r.code !== 0);
    const why = failed.map((r) =>
      r.output
        .split('\n')
        .filter((l) => /abort|error|FATAL/i.test(l))
        .join(' | '),
    );
    expect(failed.length, `only the clients of the killed replica fail: ${JSON.stringify(why)}`).toBe(
      onVictim,
    );
    for (const r of results.filter((x) => x.code === 0))
      expect(r.output).toMatch(/number of failed transactions: 0/);

    // New connections land on the survivors.
    await cluster.waitServers({ [victim.id]: false });
    const before = await cluster.servers();
    const after4 = await pgbench(tunnel, ['-n', '-c', '4', '-t', '5', '-M', 'simple']);
    expect(after4.code, after4.output).toBe(0);
    const after = await cluster.servers();
    expect(after[victim.id].total).toBe(before[victim.id].total);
    const landed = survivors.reduce((n, g) => n + after[g.id].total - before[g.id].total, 0);
    expect(landed).toBeGreaterThanOrEqual(4);

    // Every statement PostgreSQL executed has its record; the log verifies offline and online.
    const dir = mkdtempSync(join(tmpdir(), 'hoop-replicas-'));
    const file = join(dir, 'export.jsonl');
    const exported = await cluster.cli(['sessions', 'export', '--since', '1h', '-o', file], {
      client: CLIENTS.auditor,
    });
    expect(exported.code, exported.stderr).toBe(0);
    const offline = await cluster.cli(['audit', 'verify', file, '--public-key', cluster.publicKeyFile], {
      client: CLIENTS.auditor,
    });
    expect(offline.code, offline.stdout + offline.stderr).toBe(0);
    const online = await cluster.cli(['audit', 'verify', '--json'], { client: CLIENTS.auditor });
    expect(online.code, online.stdout + online.stderr).toBe(0);

    const recorded = new Map<string, number>();
    for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
      const r = (
        JSON.parse(line) as { record?: { type: string; data: { text?: string; decision?: string } } }
      ).record;
      if (r?.type !== 'statement' || r.data.decision !== 'allow') continue;
      const text = normaliseStatement(String(r.data.text));
      recorded.set(text, (recorded.get(text) ?? 0) + 1);
    }
    const executed = new Map<string, number>();
    for (const t of cluster.executedStatements()) executed.set(t, (executed.get(t) ?? 0) + 1);
    const missing = [...executed].filter(([t, n]) => (recorded.get(t) ?? 0) < n);
    expect(missing).toEqual([]);
    const ran = [...executed.values()].reduce((a, b) => a + b, 0);
    const kept = [...recorded.values()].reduce((a, b) => a + b, 0);
    console.log(
      `replicas: kill -9 ${victim.id} with ${onVictim} of 6 sessions; ${failed.length} pgbench runs failed, ` +
        `${results.length - failed.length} finished; statements executed ${ran}, recorded ${kept}`,
    );
  }, 150_000);

  it('an approval requested through one replica and approved through another releases the statement', async () => {
    const [, asked, approver] = cluster.gateways;
    const exec = cluster.cli(['exec', 'prod-db', '-c', 'create table approval_probe (id int)'], {
      gateway: asked.url,
    });
    const request = await until('the pending request', async () => {
      const list = await cluster.cli(['approvals', '--json'], {
        client: CLIENTS.reviewer,
        gateway: approver.url,
      });
      if (list.code !== 0) return undefined;
      const { approvals } = JSON.parse(list.stdout) as {
        approvals: { id: string; statement: string; status: string }[];
      };
      return approvals.find((a) => a.statement.includes('approval_probe') && a.status === 'pending');
    });
    const approve = await cluster.cli(['approve', String(request.id)], {
      client: CLIENTS.reviewer,
      gateway: approver.url,
    });
    expect(approve.code, approve.stderr).toBe(0);
    const result = await exec;
    expect(result.code, result.stderr).toBe(0);
    expect(cluster.pg.psql("select to_regclass('public.approval_probe') is not null", 'shop').trim()).toBe(
      't',
    );
  }, 90_000);

  it('SIGTERM drains a replica: HAProxy stops sending it tunnels, its open session ends without an error', async () => {
    const draining = cluster.gateways[1];
    const other = cluster.gateways[2];
    const direct = await cluster.connect({ gateway: draining.url });
    const session = new pg.Client({ connectionString: direct.url });
    const errors: Error[] = [];
    session.on('error', (e) => errors.push(e));
    await session.connect();
    await session.query('begin');
    await session.query('update pgbench_branches set bbalance = bbalance + 1 where bid = 1');

    draining.process.kill('SIGTERM');
    await cluster.waitServers({ [draining.id]: false, [other.id]: true });
    // A new connection through HAProxy goes to a replica still ready.
    const before = await cluster.servers();
    const ready = Object.keys(before).filter((id) => before[id].up);
    const opened = (s: typeof before) => ready.reduce((n, id) => n + s[id].total, 0);
    const fresh = new pg.Client({ connectionString: tunnel.url });
    await fresh.connect();
    expect((await fresh.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    const after = await cluster.servers();
    await fresh.end();
    expect(opened(after), JSON.stringify({ before, after })).toBeGreaterThan(opened(before));
    expect(after[draining.id].total).toBe(before[draining.id].total);

    // The draining replica's session carries on to its end.
    await session.query('update pgbench_branches set bbalance = bbalance - 1 where bid = 1');
    await session.query('commit');
    await session.end();
    direct.stop();
    expect(errors).toEqual([]);
    expect(await draining.exited).toBe(0);
    expect(draining.log).toMatch(/"drain":"finished"/);
  }, 90_000);
});
