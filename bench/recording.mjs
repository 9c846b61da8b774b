#!/usr/bin/env node
// What recording costs on the full path: pgbench -S (select only) through `hoopctl connect` →
// hoop-gateway → PostgreSQL, as ci-bot, with the audit log as shipped vs the cheapest a gateway can
// record. Prints figures, asserts nothing.
//
// "Off" does not exist: every statement's record is written and made durable BEFORE the statement is
// forwarded, and no setting turns that off. So the baselines are:
//   cheap    recording.max_rows: 0 (no result rows kept) and the SQLite store on tmpfs (/dev/shm), so
//            each commit's fsync costs nothing: what is left is the log's own work (encode, hash,
//            insert, two records per statement) — the floor of any configuration
//   no-rows  recording.max_rows: 0, store on disk
//   shipped  the defaults: store on disk, audit.durability: crash (SQLite synchronous=NORMAL: survives
//            kill -9), the first 100 rows / 64 KiB of each result
//   power    as shipped with audit.durability: power (an fsync of the WAL at every group commit)
//   direct   pgbench straight to PostgreSQL, for scale (no gateway, no tunnel)
// The loss reported is shipped vs cheap. Also: the log's CPU per record with no store I/O at all.
//
//   npm run build && node bench/recording.mjs [seconds=10] [rounds=2] [clients=8]
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { createAuditLog } from '../dist/gateway/audit/log.js';
import { pgbench, startBenchStack } from './lib/stack.mjs';

const SECONDS = Number(process.argv[2] ?? 10);
const ROUNDS = Number(process.argv[3] ?? 2);
const CLIENTS = Number(process.argv[4] ?? 8);

const POLICIES = `
policies:
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: bench, allow: [read, write, ddl, transaction, session, copy-in] }
`;

// --- the log alone: main-thread CPU per record, with a writer that does no I/O ----------------------
// (The writer thread's own work — hash, assemble, commit — is what bench/store.mjs measures.)
async function logCpuPerRecord(records = 200_000) {
  let seq = 0;
  const nullStore = {
    kind: 'sqlite',
    dataDir: '/nonexistent',
    listChains: async () => [],
    chainHead: async () => ({ seq: 0, hash: '0'.repeat(64) }),
    listCheckpoints: async () => [],
    registerChain: async () => {},
    openChainWriter: () => ({
      async submit(entries) {
        const n = entries.length / 8;
        const firstSeq = seq + 1;
        seq += n;
        return { firstSeq, time: new Date().toISOString(), prev: '0'.repeat(64), hashes: '0'.repeat(64 * n) };
      },
      close: async () => {},
    }),
  };
  const log = await createAuditLog(nullStore, { replica: 'bench' });
  const identity = {
    issuer: 'https://idp.example.com',
    subject: 'ci-bot',
    name: 'ci-bot',
    groups: ['ci-deploy'],
    clientId: 'ci-bot',
    kind: 'service',
  };
  const input = (i) => ({
    type: 'statement',
    identity,
    source: '127.0.0.1:50000',
    connection: 'prod-db',
    session: '7f3c2a9e-0000-4000-8000-000000000000',
    data: {
      statement_id: `7f3c2a9e-${i}`,
      text: 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213',
      fingerprint: 'a1b2c3d4e5f60718',
      class: 'read',
      kind: 'SelectStmt',
      relations: ['public.pgbench_accounts'],
      functions: [],
      flags: [],
      decision: 'allow',
      policy: 'ci-deploy',
      rule: 'bench',
      reason: 'rule "bench" of policy "ci-deploy" allows read statements',
      protocol: 'simple',
    },
  });
  const cpu = process.cpuUsage();
  const batch = 64;
  for (let i = 0; i < records; i += batch) {
    // As the relay does: enqueue, and one wait for the batch's last LSN.
    let last = 0;
    for (let j = 0; j < batch; j++) last = log.enqueue(input(i + j));
    await new Promise((resolve) => log.whenDurable(last, resolve));
  }
  const used = process.cpuUsage(cpu);
  await log.close();
  return (used.user + used.system) / records;
}

/** CPU seconds (user + system) used so far by the process whose command line names `configFile`. */
function gatewayCpu(configFile) {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(configFile)) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
    } catch {}
  }
  return Number.NaN;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const stack = await startBenchStack();
const shm = mkdtempSync('/dev/shm/hoop-bench-store-');
const results = { direct: [], cheap: [], 'no-rows': [], shipped: [], power: [] };
const cpuPerTx = { cheap: [], 'no-rows': [], shipped: [], power: [] };
try {
  const direct = stack.directUrl;
  const init = pgbench(stack.pg.bindir, ['-i', '-q', '-s', '4', direct]);
  if (!/done/.test(init.output)) throw new Error(init.output);

  const configs = {
    cheap: { extraConfig: 'recording: { max_rows: 0 }', tmpfs: true },
    'no-rows': { extraConfig: 'recording: { max_rows: 0 }' },
    shipped: { extraConfig: '' },
    power: { extraConfig: 'audit: { durability: power }' },
  };
  const run = (url) =>
    pgbench(stack.pg.bindir, ['-n', '-S', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), url]).tps;

  for (let round = 0; round < ROUNDS; round++) {
    results.direct.push(run(direct));
    for (const [name, config] of Object.entries(configs)) {
      // startGateway puts the store at <dir>/hoop-data-<n>; for tmpfs, that path is a link into /dev/shm.
      if (config.tmpfs) {
        const n = Object.keys(configs).length * round + Object.keys(configs).indexOf(name) + 1;
        const target = join(shm, `store-${n}`);
        mkdirSync(target);
        symlinkSync(target, join(stack.dir, `hoop-data-${n}`));
      }
      const gateway = await stack.startGateway({ policies: POLICIES, extraConfig: config.extraConfig });
      const tunnel = await stack.connect();
      try {
        run(tunnel.url); // warm up: sessions, the parser cache, the JIT
        const cpu = gatewayCpu(gateway.configFile);
        const tps = run(tunnel.url);
        results[name].push(tps);
        cpuPerTx[name].push(((gatewayCpu(gateway.configFile) - cpu) * 1e6) / (tps * SECONDS));
      } finally {
        tunnel.stop();
        await gateway.stop();
      }
    }
  }
} finally {
  await stack.stop();
  rmSync(shm, { recursive: true, force: true });
}

const cpuPerRecord = await logCpuPerRecord();
const figures = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const loss = (a, b) => `${(100 * (1 - a / b)).toFixed(1)} %`;
console.log(
  `pgbench -S -c ${CLIENTS} -T ${SECONDS}, median of ${ROUNDS} rounds (TPS; 2 records per statement)`,
);
for (const [name, tps] of Object.entries(figures)) {
  console.log(
    `  ${name.padEnd(8)} ${tps.toFixed(0).padStart(8)}   all rounds: ${results[name].map((t) => t.toFixed(0)).join(', ')}`,
  );
}
console.log(
  `gateway CPU per transaction (µs, median): ${Object.entries(cpuPerTx)
    .map(([k, v]) => `${k} ${median(v).toFixed(0)}`)
    .join(', ')}`,
);
console.log(`  shipped vs cheap (store on disk, result rows): ${loss(figures.shipped, figures.cheap)}`);
console.log(
  `  shipped vs no-rows (the cost of result rows):         ${loss(figures.shipped, figures['no-rows'])}`,
);
console.log(`  power vs shipped (an fsync per commit): ${loss(figures.power, figures.shipped)}`);
console.log(
  `  shipped vs direct PostgreSQL (the whole gateway path): ${loss(figures.shipped, figures.direct)}`,
);
console.log(
  `the log alone, no store I/O: ${cpuPerRecord.toFixed(1)} µs CPU per record (${(1e6 / cpuPerRecord).toFixed(0)} records/s on one core)`,
);
