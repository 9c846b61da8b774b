#!/usr/bin/env node
/**
 * The data path's figures, every path in one run on the same machine:
 *   direct     pgbench → PostgreSQL
 *   pgbouncer  pgbench → pgbouncer (session mode) → PostgreSQL
 *   node relay ×2  pgbench → two bare Node TCP relays → PostgreSQL: the floor of two Node processes
 *              on the path, doing nothing but moving bytes (bench/lib/node-relay.mjs)
 *   node mux ×2    the same, with every client connection multiplexed over one connection in the
 *              middle (bench/lib/mux-relay.mjs): TPS only
 *   gateway    pgbench → hoopctl connect → WebSocket (plain loopback HTTP) → hoop-gateway → PostgreSQL
 *   full       pgbench → hoopctl connect → WebSocket over TLS → hoop-gateway → PostgreSQL
 * 1. pgbench -S (select-only) in -M simple / extended / prepared: TPS and the ratio to direct.
 * 2. p50/p99 latency of a one-row query, one client, per path.
 * 3. A ~1 GB result (generate_series) streamed per path: throughput, ratio, the gateway's peak RSS.
 *
 * Usage (after npm run build): node bench/run.mjs [--seconds 10] [--clients 8] [--mb 1000]
 *   HOOP_BENCH_PROFILE=/tmp/prof node bench/run.mjs   → gateway CPU profiles (.cpuprofile) there.
 * Other scripts: node bench/leak.mjs [--cycles 10000]; node bench/classifier.mjs; node bench/store.mjs.
 */
import { spawnSync } from 'node:child_process';
import { connArgs, rawConnect, resetPeak, startBench, statusKb } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg('seconds', 10);
const CLIENTS = arg('clients', 8);
const MB = arg('mb', 1000);
const LATENCY_QUERIES = arg('queries', 2000);

const bench = await startBench();
const paths = Object.entries(bench.paths).filter(([, p]) => p);
const gatewayPid = (name) => bench.paths[name]?.pid;

function pgbench(p, mode) {
  const r = spawnSync(
    'pgbench',
    [
      '-S',
      '-n',
      '-M',
      mode,
      '-c',
      String(CLIENTS),
      '-j',
      '2',
      '-T',
      String(SECONDS),
      ...connArgs(p),
      p.database,
    ],
    { env: { ...process.env, PGPASSWORD: p.password }, encoding: 'utf8' },
  );
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench failed on port ${p.port}: ${r.stderr}`);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  if (failed && failed[1] !== '0') throw new Error(`pgbench had ${failed[1]} failed transactions`);
  return Number(m[1]);
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(
  `hoop bench: ${CLIENTS} clients, ${SECONDS} s per run, node ${process.version}, ${new Date().toISOString()}`,
);
console.log('\n## pgbench -S (select-only), TPS');
console.log(`| mode | ${paths.map(([n]) => n).join(' | ')} | full ≥ pgbouncer |`);
console.log(`|---|${paths.map(() => '---:').join('|')}|---|`);
const tpsTable = {};
for (const mode of ['simple', 'extended', 'prepared']) {
  const row = {};
  for (const [name, p] of paths) row[name] = pgbench(p, mode);
  tpsTable[mode] = row;
  const cells = paths.map(([n]) => `${fmt(row[n])} (${fmt(row[n] / row.direct, 2)})`);
  const verdict = row.pgbouncer === undefined ? 'n/a' : row.full >= row.pgbouncer ? 'yes' : 'NO';
  console.log(`| ${mode} | ${cells.join(' | ')} | ${verdict} |`);
}

console.log(`\n## one-row query latency, 1 client, ${LATENCY_QUERIES} queries (ms)`);
console.log('| path | p50 | p99 |');
console.log('|---|---:|---:|');
for (const [name, p] of paths) {
  if (p.tpsOnly) continue;
  const c = await rawConnect(p);
  for (let i = 0; i < 200; i++) await c.query('select 1');
  const samples = [];
  for (let i = 0; i < LATENCY_QUERIES; i++) {
    const t = process.hrtime.bigint();
    await c.query('select aid, abalance from pgbench_accounts where aid = 1');
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  c.close();
  samples.sort((a, b) => a - b);
  const q = (f) => samples[Math.min(samples.length - 1, Math.floor(samples.length * f))];
  console.log(`| ${name} | ${fmt(q(0.5), 3)} | ${fmt(q(0.99), 3)} |`);
}

const rows = Math.round((MB * 1e6) / 1011);
console.log(`\n## a ${MB} MB result: select repeat('x', 1000) from generate_series(1, ${fmt(rows)})`);
// The peak is reset before each path; "before" is the gateway's RSS as the stream starts (what the
// earlier runs left: the parser's WASM heap and V8's young generation grown by pgbench -M simple).
console.log('| path | MB/s | ratio to direct | gateway RSS before (MB) | gateway peak RSS (MB) |');
console.log('|---|---:|---:|---:|---:|');
let directRate = 0;
for (const [name, p] of paths) {
  if (p.tpsOnly) continue;
  const pid = gatewayPid(name);
  if (pid) resetPeak(pid);
  const before = pid ? fmt(statusKb(pid, 'VmRSS') / 1024, 0) : '';
  const c = await rawConnect(p);
  const t = process.hrtime.bigint();
  const bytes = await c.query(`select repeat('x', 1000) from generate_series(1, ${rows})`);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  c.close();
  const rate = bytes / 1e6 / seconds;
  if (name === 'direct') directRate = rate;
  const peak = pid ? fmt(statusKb(pid, 'VmHWM') / 1024, 0) : '';
  console.log(`| ${name} | ${fmt(rate)} | ${fmt(rate / directRate, 2)} | ${before} | ${peak} |`);
}

bench.stop();
setTimeout(() => process.exit(0), 500).unref();
