#!/usr/bin/env node
/**
 * Replicas on one PostgreSQL store behind HAProxy (bench/lib/cluster.mjs, the set-up of
 * test/integration/replicas.test.ts), measured:
 *   1. pgbench TPS through `hoopctl connect` → HAProxy → 1 replica, then → 3 replicas (same clients);
 *      the records/s the store took in each run;
 *   2. the store alone: records/s with 1 and with 3 writer processes appending (each a gateway's audit log);
 *   3. kill -9 of one replica under load: statements PostgreSQL executed vs statements recorded.
 * Wall-clock figures depend on the machine's load: run it on a quiet machine, and compare within one run.
 *
 *   npm run build && node bench/replicas.mjs [--seconds 15] [--clients 6]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { normaliseStatement, pgbench, startCluster } from './lib/cluster.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 15);
const CLIENTS = arg('clients', 6);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.once('SIGTERM', () => process.exit(1));
process.once('SIGINT', () => process.exit(1));
const cluster = await startCluster({ replicas: 3, grace: '10s', scale: 10, logStatements: true });
const storeRecords = () => Number(cluster.pg.psql('select count(*) from audit_log', 'hoop').trim());
async function run(label, args) {
  const tunnel = await cluster.connect();
  const before = storeRecords();
  const started = Date.now();
  const result = await pgbench(tunnel, args);
  const seconds = (Date.now() - started) / 1000;
  const records = storeRecords() - before;
  tunnel.stop();
  if (result.code !== 0) throw new Error(`${label}: pgbench failed\n${result.output}`);
  return { label, tps: result.tps, records, recordsPerSecond: records / seconds };
}

try {
  const lines = [];
  const load = ['-n', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-M', 'simple'];
  // 1. One replica, then three, same clients and load (HAProxy's admin socket takes two out and back).
  for (const mode of process.argv.includes('--kill-only') ? [] : [['-S'], []]) {
    const name = mode.length ? 'select-only' : 'tpc-b';
    await sendHaproxy('disable server hoop_gateways/gw2');
    await sendHaproxy('disable server hoop_gateways/gw3');
    const one = await run(`${name}, 1 replica`, [...load, ...mode]);
    await sendHaproxy('enable server hoop_gateways/gw2');
    await sendHaproxy('enable server hoop_gateways/gw3');
    await cluster.waitServers({ gw1: true, gw2: true, gw3: true });
    const three = await run(`${name}, 3 replicas`, [...load, ...mode]);
    lines.push(one, three);
  }

  // 2. The store alone: 1 and 3 writer processes.
  const writers = [];
  for (const count of process.argv.includes('--kill-only') ? [] : [1, 3])
    writers.push({ count, ...(await appendWriters(count, 32)) });

  // 3. kill -9 under load: executed vs recorded.
  const tunnel = await cluster.connect();
  const runs = Array.from({ length: CLIENTS }, () =>
    pgbench(tunnel, ['-n', '-c', '1', '-T', String(SECONDS), '-M', 'simple']),
  );
  // Kill once the run is under way: 30 transactions into it, or half its time.
  const updates = () =>
    cluster.executedStatements().filter((t) => t.startsWith('UPDATE pgbench_accounts')).length;
  const updatesBefore = updates();
  let ended = false;
  Promise.all(runs).then(() => {
    ended = true;
  });
  const half = Date.now() + (SECONDS * 1000) / 2;
  while (!ended && updates() - updatesBefore < 30 && Date.now() < half) await sleep(100);
  cluster.gateways[0].process.kill('SIGKILL');
  const results = await Promise.all(runs);
  tunnel.stop();
  const executed = cluster.executedStatements();
  // Tens of thousands of texts: more than the dev helper's psql buffer takes.
  const recordedTexts = execFileSync(
    'psql',
    [
      cluster.pg.url('hoop'),
      '-Atc',
      "select record::json->'data'->>'text' from audit_log where type = 'statement'",
    ],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  )
    .split('\n')
    .filter(Boolean)
    .map(normaliseStatement);
  const recorded = new Map();
  for (const t of recordedTexts) recorded.set(t, (recorded.get(t) ?? 0) + 1);
  const used = new Map();
  const unrecorded = [];
  for (const t of executed) {
    const n = (used.get(t) ?? 0) + 1;
    used.set(t, n);
    if ((recorded.get(t) ?? 0) < n) unrecorded.push(t);
  }

  console.log(
    `\nreplicas behind HAProxy (${CLIENTS} pgbench clients, ${SECONDS} s each, one hoopctl connect in front; 1-minute load average ${loadavg()[0].toFixed(1)} on ${cpus().length} cores)`,
  );
  console.log('| run | TPS | records in the store | records/s |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const l of lines)
    console.log(`| ${l.label} | ${l.tps?.toFixed(0)} | ${l.records} | ${l.recordsPerSecond.toFixed(0)} |`);
  console.log('\nthe store alone (PostgreSQL, audit.durability crash, 32 appends in flight per writer)');
  console.log('| writers | records/s | CPU s per 1,000 records (writers) |');
  console.log('| ---: | ---: | ---: |');
  for (const w of writers)
    console.log(`| ${w.count} | ${w.perSecond.toFixed(0)} | ${((w.cpu / w.appended) * 1000).toFixed(3)} |`);
  console.log(
    `\nkill -9 of gw1 under load: ${results.filter((r) => r.code !== 0).length} of ${CLIENTS} pgbench clients lost ` +
      `(those on gw1); statements executed ${executed.length}, recorded ${recordedTexts.length}, executed without a record ${unrecorded.length}`,
  );
  for (const t of unrecorded.slice(0, 5)) console.log(`  executed, not recorded: ${t}`);
} finally {
  cluster.stop();
}
process.exit(0);

async function sendHaproxy(command) {
  const { connect } = await import('node:net');
  await new Promise((res, rej) => {
    const s = connect(join(cluster.dir, 'haproxy.sock'));
    s.on('error', rej);
    s.on('data', () => {});
    s.on('end', res);
    s.write(`${command}\n`);
  });
}

async function appendWriters(count, concurrency) {
  // A database of their own: the gateways' store keeps only what the gateways wrote.
  cluster.pg.psql('DROP DATABASE IF EXISTS hoop_writers; CREATE DATABASE hoop_writers;');
  const url = cluster.pg.url('hoop_writers');
  const children = Array.from({ length: count }, (_, i) =>
    spawn(
      process.execPath,
      [
        join(ROOT, 'bench', 'lib', 'append-writer.mjs'),
        url,
        String(SECONDS),
        String(concurrency),
        mkdtempSync(join(tmpdir(), `hoop-writer-${i}-`)),
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    ),
  );
  const lines = children.map((c) => {
    let out = '';
    c.stdout.on('data', (d) => {
      out += d.toString();
    });
    return () => out;
  });
  while (!lines.every((l) => l().includes('ready'))) await sleep(50);
  const started = Date.now();
  for (const c of children) c.stdin.write('go\n');
  await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
  const seconds = (Date.now() - started) / 1000;
  const results = lines.map((l) => JSON.parse(l().trim().split('\n').at(-1)));
  const appended = results.reduce((n, r) => n + r.appended, 0);
  return { appended, perSecond: appended / seconds, cpu: results.reduce((n, r) => n + r.cpuSeconds, 0) };
}
