#!/usr/bin/env node
/**
 * Records per second each audit store sustains with group commit, at concurrency 1, 16 and 64, and what
 * each record costs in CPU. Run after `npm run build`: node bench/store.mjs [--seconds 3] [--rounds 1]
 *
 * Each writer does what a session does: enqueue a record, wait until it is durable (whenDurable), then the
 * next. Each store at both audit.durability settings: crash (the default: SQLite WAL synchronous=NORMAL,
 * the PostgreSQL store's sessions synchronous_commit=off) and power (SQLite synchronous=FULL, PostgreSQL
 * synchronous_commit=on). PostgreSQL: a throwaway cluster with fsync on (the harness turns it off).
 *
 * --pipeline N (N > 1): each writer is a session pipelining N statements, as the relay does with a
 * pipelined client: per statement a write-ahead `statement` record and a lazy `statement.result` (which
 * never forces a commit of its own), one wait for the last statement's LSN, then the next N. The figure
 * is then statements/s (two records each), and CPU per statement.
 *
 * Columns: rec/s (wall clock: moves with the machine's load), then µs of CPU per record of the main
 * thread (which encodes: enqueue, and the benchmark's own writers) and of the other threads (the chain
 * writer, which hashes and commits, plus GC helpers), from /proc/self/task. The CPU figures are the
 * steadier ones on a shared machine.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadOrCreateSigningKey } from '../dist/gateway/audit/checkpoint.js';
import { createAuditLog } from '../dist/gateway/audit/log.js';
import { startPostgres } from '../dist/gateway/dev/postgres.js';
import { openStore } from '../dist/gateway/store/index.js';

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) || fallback : fallback;
};
const seconds = arg('seconds', 3);
const rounds = arg('rounds', 1);
const pipeline = arg('pipeline', 1);
const CONCURRENCY = [1, 16, 64];

// A session's constant part is one object per session: the log encodes it once (cached by identity).
const identity = {
  issuer: 'https://idp.example.com',
  subject: 'bench',
  groups: ['engineering'],
  kind: 'human',
};
const result = (i) => ({
  type: 'statement.result',
  identity,
  source: '127.0.0.1:5000',
  connection: 'prod-db',
  session: 's-bench',
  data: { statement_id: String(i), tag: 'SELECT 1', rows: 1, bytes: 64, duration_ms: 0.2 },
});
const record = (i) => ({
  type: 'statement',
  identity,
  source: '127.0.0.1:5000',
  connection: 'prod-db',
  session: 's-bench',
  data: {
    statement_id: String(i),
    text: 'select * from orders where id = $1',
    fingerprint: '9f2c4a1b7e3d5c60',
    class: 'read',
    kind: 'SelectStmt',
    relations: ['public.orders'],
    functions: [],
    flags: [],
    decision: 'allow',
    policy: 'engineers',
    rule: 'reads',
    protocol: 'extended',
  },
});

/** CPU seconds so far of this process's main thread and of all its other threads (/proc, clock ticks). */
function threadCpu() {
  let main = 0;
  let others = 0;
  for (const task of readdirSync('/proc/self/task')) {
    let fields;
    try {
      fields = readFileSync(`/proc/self/task/${task}/stat`, 'utf8').split(') ')[1].split(' ');
    } catch {
      continue; // a thread that just ended
    }
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (Number(task) === process.pid) main += ticks;
    else others += ticks;
  }
  return { main: main / 100, others: others / 100 };
}

let replicas = 0;
async function measure(store, concurrency) {
  const key = loadOrCreateSigningKey({ dataDir: store.dataDir });
  const log = await createAuditLog(store, {
    signingKey: key,
    replica: `bench-${++replicas}`,
    checkpoint: { every: 1000, intervalMs: 60_000 },
  });
  // Warm up (JIT, prepared statements), then measure.
  await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(record(i))));
  const cpu0 = threadCpu();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from(
      { length: concurrency },
      () =>
        new Promise((resolve, reject) => {
          const next = () => {
            if (performance.now() >= deadline) return resolve();
            if (pipeline === 1) {
              log.whenDurable(log.enqueue(record(done)), (err) => {
                if (err) return reject(err);
                done++;
                next();
              });
              return;
            }
            // N statements in flight: each one's write-ahead record, then its (lazy) result record.
            let last = 0;
            for (let i = 0; i < pipeline; i++) {
              last = log.enqueue(record(done + i));
              log.enqueue(result(done + i));
            }
            log.whenDurable(last, (err) => {
              if (err) return reject(err);
              done += pipeline;
              next();
            });
          };
          next();
        }),
    ),
  );
  const wall = performance.now() - started;
  const cpu1 = threadCpu();
  await log.close();
  return {
    perSecond: (done * 1000) / wall,
    mainUs: ((cpu1.main - cpu0.main) * 1e6) / done,
    othersUs: ((cpu1.others - cpu0.others) * 1e6) / done,
  };
}

const dataRoot = mkdtempSync(join(tmpdir(), 'hoop-bench-'));
// The same throwaway cluster as the tests and --dev, but with fsync on: this measures durability.
const pg = await startPostgres({
  settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' },
});
const rows = [];
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [name, config, durability] of [
      ['sqlite, durability crash', { path: join(dataRoot, 'sqlite-crash') }, 'crash'],
      ['sqlite, durability power', { path: join(dataRoot, 'sqlite-power') }, 'power'],
      ['postgresql, durability crash', { url: pg.url() }, 'crash'],
      ['postgresql, durability power', { url: pg.url() }, 'power'],
    ]) {
      const store = await openStore(config, { dataDir: join(dataRoot, 'pgdata'), durability });
      const figures = [];
      for (const c of CONCURRENCY) figures.push(await measure(store, c));
      await store.close();
      rows.push([rounds > 1 ? `${name} #${round}` : name, figures]);
    }
  }
} finally {
  pg.stop();
  rmSync(dataRoot, { recursive: true, force: true });
}
const pad = (text, n) => String(text).padStart(n);
console.log(
  pipeline === 1
    ? `audit records/second, group commit, ${seconds} s per cell, each writer awaits durability; CPU µs per record: main thread / other threads (the chain writer)`
    : `statements/second, each writer a session pipelining ${pipeline} statements (2 records each: write-ahead + lazy result), one wait per ${pipeline}; ${seconds} s per cell; CPU µs per statement: main thread / other threads`,
);
console.log(['store'.padEnd(34), ...CONCURRENCY.map((c) => pad(`c=${c}`, 22))].join(''));
for (const [name, figures] of rows) {
  const cells = figures.map(
    (f) =>
      `${pad(Math.round(f.perSecond), 7)} ${pad(f.mainUs.toFixed(1), 6)}/${f.othersUs.toFixed(1).padEnd(6)}`,
  );
  console.log([name.padEnd(34), ...cells.map((c) => pad(c, 22))].join(''));
}
