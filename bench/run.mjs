#!/usr/bin/env node
/**
 * The data path's figures, every path in one run on the same machine:
 *   direct     pgbench → PostgreSQL
 *   pgbouncer  pgbench → pgbouncer (session mode) → PostgreSQL
 *   pgpool-II  pgbench → pgpool-II (raw mode, log_statement = on: parses and logs every statement)
 *   node relay ×1  pgbench → one bare Node TCP relay → PostgreSQL: the native listener's floor
 *   node relay ×2  pgbench → two bare Node TCP relays → PostgreSQL: the floor of two Node processes
 *              on the path, doing nothing but moving bytes (bench/lib/node-relay.mjs)
 *   node mux ×2    the same, with every client connection multiplexed over one connection in the
 *              middle (bench/lib/mux-relay.mjs): TPS only
 *   native     pgbench → hoop-gateway's native PostgreSQL listener (plain loopback) → PostgreSQL
 *   native TLS the same over TLS (sslmode=verify-full), as services use it
 *   gateway    pgbench → hoopctl connect → WebSocket (plain loopback HTTP) → hoop-gateway → PostgreSQL
 *   full       pgbench → hoopctl connect → WebSocket over TLS → hoop-gateway → PostgreSQL
 * 1. pgbench -S (select-only) in -M simple / extended / prepared: TPS and the ratio to direct; the
 *    gateway's CPU per transaction (both threads, /proc) on each gateway path, and that of one bare
 *    relay process of each Node floor (what moving the bytes alone costs a Node process here).
 * 2. p50/p99 latency of a one-row query, one client, per path.
 * 3. A ~1 GB result (generate_series) streamed per path: throughput, ratio, the gateway's peak RSS,
 *    and CPU per MB of the gateway and of hoopctl connect.
 * 0. A short warm-up pgbench on every path but direct (V8 optimises before the measured runs).
 * 4. Issue 14's targets as ratios against the floors they name, met or not.
 *
 * Usage (after npm run build): node bench/run.mjs [--seconds 10] [--clients 8] [--mb 1000] [--only a,b]
 *   --only keeps the named paths (e.g. --only direct,native,gateway); direct is always kept.
 *   HOOP_BENCH_PROFILE=/tmp/prof node bench/run.mjs   → gateway CPU profiles (.cpuprofile) there.
 * Other scripts: node bench/leak.mjs [--cycles 10000]; node bench/classifier.mjs; node bench/store.mjs.
 */
import { spawn } from 'node:child_process';
import { connArgs, cpuSeconds, memoryOf, rawConnect, resetPeak, startBench, statusKb } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const SECONDS = Number(arg('seconds', 10));
const CLIENTS = Number(arg('clients', 8));
const MB = Number(arg('mb', 1000));
const LATENCY_QUERIES = Number(arg('queries', 2000));
const ONLY = arg('only', '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

const bench = await startBench();
const paths = Object.entries(bench.paths).filter(
  ([name, p]) => p && (ONLY.length === 0 || name === 'direct' || ONLY.includes(name)),
);

/** The processes whose CPU a path's figures report: the gateway, and hoopctl connect when on the path. */
const gatewayPid = (p) => p.pid;
const connectPid = (p) => p.connectPid;
/** Whose CPU per transaction the table shows: the gateway, or each bare relay of a floor (averaged). */
const cpuPids = (p) => (p.pid ? [p.pid] : (p.relayPids ?? []));

/** pgbench without blocking this process: the dev IdPs answer token and JWKS requests from here. */
function runPgbench(args, env) {
  return new Promise((resolve) => {
    const child = spawn('pgbench', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.once('exit', () => resolve({ stdout, stderr }));
  });
}

async function pgbench(p, mode, seconds = SECONDS) {
  await p.refresh?.();
  const pids = cpuPids(p);
  const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const r = await runPgbench(
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
      String(seconds),
      ...connArgs(p),
      p.database,
    ],
    { ...process.env, ...p.env, PGPASSWORD: p.password },
  );
  const cpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench failed on port ${p.port}: ${r.stderr}`);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  if (failed && failed[1] !== '0') throw new Error(`pgbench had ${failed[1]} failed transactions`);
  const done = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  const perTx = pids.length && done ? (cpu / pids.length / Number(done[1])) * 1e6 : undefined;
  return { tps: Number(m[1]), cpuPerTx: perTx };
}

const fmt = (n, d = 0) =>
  n === undefined || Number.isNaN(n)
    ? '–'
    : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(
  `hoop bench: ${CLIENTS} clients, ${SECONDS} s per run, node ${process.version}, ${new Date().toISOString()}`,
);
// Warm-up: each Node process on a path runs a short pgbench first, so the first path measured on a fresh
// gateway (e.g. native before gateway, both on the same process) does not pay V8's optimisation alone.
const WARMUP_SECONDS = Math.max(1, Math.min(3, Math.round(SECONDS / 3)));
for (const [name, p] of paths) if (name !== 'direct') await pgbench(p, 'simple', WARMUP_SECONDS);

console.log('\n## pgbench -S (select-only), TPS (ratio to direct)');
console.log(`| mode | ${paths.map(([n]) => n).join(' | ')} |`);
console.log(`|---|${paths.map(() => '---:').join('|')}|`);
const tps = {};
const cpuPerTx = {};
for (const mode of ['simple', 'extended', 'prepared']) {
  tps[mode] = {};
  cpuPerTx[mode] = {};
  for (const [name, p] of paths) {
    const r = await pgbench(p, mode);
    tps[mode][name] = r.tps;
    cpuPerTx[mode][name] = r.cpuPerTx;
  }
  const row = tps[mode];
  console.log(
    `| ${mode} | ${paths.map(([n]) => `${fmt(row[n])} (${fmt(row[n] / row.direct, 2)})`).join(' | ')} |`,
  );
}
const cpuPaths = paths.filter(([, p]) => cpuPids(p).length > 0);
if (cpuPaths.length) {
  console.log(
    '\n## CPU per transaction of the gateway, and of one bare relay process of each floor (µs, user + system of every thread, /proc; target ≤ 60 in prepared)',
  );
  console.log(`| mode | ${cpuPaths.map(([n]) => n).join(' | ')} |`);
  console.log(`|---|${cpuPaths.map(() => '---:').join('|')}|`);
  for (const mode of Object.keys(cpuPerTx)) {
    console.log(`| ${mode} | ${cpuPaths.map(([n]) => fmt(cpuPerTx[mode][n])).join(' | ')} |`);
  }
}

console.log(`\n## one-row query latency, 1 client, ${LATENCY_QUERIES} queries (ms)`);
console.log('| path | p50 | p99 |');
console.log('|---|---:|---:|');
const p50 = {};
for (const [name, p] of paths) {
  if (p.tpsOnly) continue;
  await p.refresh?.();
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
  p50[name] = q(0.5);
  console.log(`| ${name} | ${fmt(q(0.5), 3)} | ${fmt(q(0.99), 3)} |`);
}

const rows = Math.round((MB * 1e6) / 1011);
console.log(`\n## a ${MB} MB result: select repeat('x', 1000) from generate_series(1, ${fmt(rows)})`);
// The peak is reset before each path; "before" is the gateway's RSS as the stream starts (what the
// earlier runs left: the parser's WASM heap and V8's young generation grown by pgbench -M simple).
console.log(
  '| path | MB/s | ratio to direct | gateway RSS before (MB) | gateway peak RSS (MB) | gateway CPU ms/MB | connect CPU ms/MB |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
const rate = {};
const peak = {};
const memory = {};
for (const [name, p] of paths) {
  if (p.tpsOnly) continue;
  await p.refresh?.();
  const pid = gatewayPid(p);
  const cpid = connectPid(p);
  if (pid) resetPeak(pid);
  const before = pid ? statusKb(pid, 'VmRSS') / 1024 : undefined;
  if (pid) memory[name] = memoryOf(pid);
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const ccpu0 = cpid ? cpuSeconds(cpid) : 0;
  const c = await rawConnect(p);
  const t = process.hrtime.bigint();
  const bytes = await c.query(`select repeat('x', 1000) from generate_series(1, ${rows})`);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  c.close();
  const mb = bytes / 1e6;
  rate[name] = mb / seconds;
  peak[name] = pid ? statusKb(pid, 'VmHWM') / 1024 : undefined;
  const gcpu = pid ? ((cpuSeconds(pid) - cpu0) * 1000) / mb : undefined;
  const ccpu = cpid ? ((cpuSeconds(cpid) - ccpu0) * 1000) / mb : undefined;
  console.log(
    `| ${name} | ${fmt(rate[name])} | ${fmt(rate[name] / rate.direct, 2)} | ${fmt(before)} | ${fmt(peak[name])} | ${fmt(gcpu, 2)} | ${fmt(ccpu, 2)} |`,
  );
}

// What the RSS before the stream is made of (docs/performance.md, "Memory").
if (Object.values(memory).some(Boolean)) {
  console.log('\n## gateway memory as the stream starts (MB, /proc/<pid>/smaps)');
  console.log(
    '| path | file-backed (node binary, libraries) | malloc (main heap, thread arenas) | other anonymous (V8 heap, WASM, stacks) |',
  );
  console.log('|---|---:|---:|---:|');
  for (const [name, m] of Object.entries(memory)) {
    if (m) console.log(`| ${name} | ${fmt(m.file)} | ${fmt(m.malloc)} | ${fmt(m.other)} |`);
  }
}

// Issue 14's targets, each a ratio against the floor it names (one run, same machine).
console.log('\n## targets (issue 14): ratio against the named floor');
console.log('| target | simple | extended | prepared | met |');
console.log('|---|---:|---:|---:|---|');
const modes = ['simple', 'extended', 'prepared'];
function tpsTarget(label, path, floor, min) {
  if (!tps.simple[path] || !tps.simple[floor]) return;
  const ratios = modes.map((m) => tps[m][path] / tps[m][floor]);
  const met = ratios.every((r) => r >= min) ? 'yes' : 'NO';
  console.log(`| ${label} | ${ratios.map((r) => fmt(r, 2)).join(' | ')} | ${met} |`);
}
tpsTarget('gateway ≥ 0.7 × node relay ×2', 'gateway', 'node relay ×2', 0.7);
tpsTarget('full ≥ 0.6 × node relay ×2', 'full', 'node relay ×2', 0.6);
tpsTarget('native ≥ 1.0 × pgpool-II', 'native', 'pgpool-II', 1);
tpsTarget('native ≥ 0.7 × node relay ×1', 'native', 'node relay ×1', 0.7);
tpsTarget('native TLS ≥ 1.0 × pgpool-II', 'native TLS', 'pgpool-II', 1);
if (cpuPerTx.prepared.gateway !== undefined) {
  const v = cpuPerTx.prepared.gateway;
  // What one bare relay process spends per transaction on the same run: a floor the target sits under.
  const relay = cpuPerTx.prepared['node relay ×1'];
  const floor = relay === undefined ? '' : ` (one bare relay: ${fmt(relay)} µs)`;
  console.log(
    `| gateway CPU per cached statement ≤ 60 µs (prepared)${floor} | | | ${fmt(v)} µs | ${v <= 60 ? 'yes' : 'NO'} |`,
  );
}
if (p50.gateway !== undefined && p50['node relay ×2'] !== undefined) {
  const over = p50.gateway - p50['node relay ×2'];
  console.log(
    `| one-row p50: gateway ≤ node relay ×2 + 0.1 ms | | | +${fmt(over, 3)} ms | ${over <= 0.1 ? 'yes' : 'NO'} |`,
  );
}
if (rate.full !== undefined && rate['node relay ×2'] !== undefined) {
  const r = rate.full / rate['node relay ×2'];
  console.log(
    `| ${MB} MB result: full ≥ 0.8 × node relay ×2 | | | ${fmt(r, 2)} | ${r >= 0.8 ? 'yes' : 'NO'} |`,
  );
}
for (const name of ['gateway', 'full', 'native', 'native TLS']) {
  if (peak[name] === undefined) continue;
  console.log(
    `| ${MB} MB result: ${name} peak RSS ≤ 150 MB | | | ${fmt(peak[name])} MB | ${peak[name] <= 150 ? 'yes' : 'NO'} |`,
  );
}

bench.stop();
setTimeout(() => process.exit(0), 500).unref();
