/** Helpers the protocol and client-matrix tests share: an allow-everything policy, processes, psql. */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Group engineering may do everything, side channels included: what a protocol comparison needs
 * (the regression SQL reads server files, sets search_path ...). Auditors may read the trail.
 */
export const ALLOW_ALL_POLICIES = `
policies:
  - name: everything
    groups: [engineering, ci-deploy]
    connections: [prod-db]
    rules:
      - name: all
        allow: [read, write, ddl, dcl, admin, copy-out, copy-in, session, transaction, procedural, utility]
        allow_side_channels: ['*']
    statement_text: true          # everything, other sessions' statement text included
  - name: auditors
    groups: [audit]
    audit: true
`;

export function psql(
  url: string,
  args: string[],
  options: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync('psql', ['-X', '-v', 'ON_ERROR_STOP=1', ...args, url], {
    encoding: 'utf8',
    input: options.input,
    env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...options.env },
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 256 << 20,
  });
}

/** Processes whose command line contains every one of `needles` (for fd/RSS checks and kills). */
export function findPids(...needles: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (needles.every((n) => cmdline.includes(n))) pids.push(Number(entry));
    } catch {
      // Gone.
    }
  }
  return pids.filter((p) => p !== process.pid);
}

/** Process ids whose environment has NAME=value. */
export function pidsWithEnv(name: string, value: string, candidates: number[]): number[] {
  return candidates.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`${name}=${value}`);
    } catch {
      return false;
    }
  });
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** A status field of /proc/<pid>/status in kB (VmRSS, VmHWM). */
export function statusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A large result with rows of every size (some far over one 64 KB read) read by a client that keeps
 * stopping: the gateway's writes to it queue, so the upstream buffers it reuses are left to those writes
 * (transport/upstream-reads.ts). Returns the rows as node-postgres parsed them, to compare with direct.
 */
export async function readLargeResultSlowly(config: string | import('pg').ClientConfig): Promise<unknown[]> {
  const { default: pg } = await import('pg');
  const client = new pg.Client(typeof config === 'string' ? { connectionString: config } : config);
  await client.connect();
  const stream = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
  const stutter = setInterval(() => {
    stream.pause();
    setTimeout(() => stream.resume(), 20);
  }, 40);
  try {
    const result = await client.query(LARGE_RESULT_SQL);
    return result.rows;
  } finally {
    clearInterval(stutter);
    stream.resume();
    await client.end();
  }
}

/** ≈ 30 MB: row sizes sweep 0–3 KB, every 500th row is 200 KB; md5 checks the bytes in between. */
const LARGE_RESULT_SQL = `select g, md5(g::text) as h,
  repeat(chr(65 + g % 26), case when g % 500 = 0 then 200000 else g * 7 % 3001 end) as pad
  from generate_series(1, 20000) g`;
