#!/usr/bin/env node
// Issue 4's cost: pgbench -S (select-only) TPS through the full path — pgbench → hoopctl connect →
// hoop-gateway → PostgreSQL — with a realistic read-only policy vs an allow-everything policy
// ("policy off"), in the simple protocol (every statement's text differs: the classifier cache
// misses) and the prepared protocol (one text: the cache hits); the database direct for scale; then
// the classifier's parses per second (bench/classifier.mjs). Prints figures, asserts nothing.
//
//   npm run build && node bench/policy.mjs [seconds-per-run=10] [rounds=3] [clients=4]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgbench, startBenchStack } from './lib/stack.mjs';

const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 3);
const clients = Number(process.argv[4] ?? 4);

/** Policy on: what an engineer or a read-only bot gets (the shape of SPEC.md's example). */
const POLICY_ON = `
policies:
  - name: ci-read-only
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: no-secrets, deny: [read, write], relations: ["secrets.*", "public.customers"] }
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, copy-in, procedural, utility] }
`;

/**
 * "Policy off": one rule that allows every class and every side channel. The gateway still frames
 * every message, classifies every statement (cached), evaluates this one rule and writes the
 * statement's audit record before forwarding — exactly what it does with the policy on.
 */
const POLICY_OFF = `
policies:
  - name: allow-all
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - name: everything
        allow: [read, write, ddl, dcl, admin, copy-out, copy-in, session, transaction, procedural, utility]
        allow_side_channels: ["*"]
`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(8);

const stack = await startBenchStack();
try {
  const bindir = stack.pg.bindir;
  pgbench(bindir, ['-i', '-s', '1', '-q', stack.directUrl]);
  const runArgs = (mode) => ['-S', '-n', '-T', String(seconds), '-c', String(clients), '-j', '2', '-M', mode];

  console.log(
    `pgbench -S, ${clients} clients, ${seconds}s per run, median of ${rounds} (runs alternate on/off); node ${process.version}`,
  );
  const results = {};
  for (const mode of ['simple', 'prepared']) {
    const direct = [];
    const tps = { on: [], off: [] };
    for (let round = 0; round < rounds; round++) {
      direct.push(pgbench(bindir, [...runArgs(mode), stack.directUrl]).tps);
      const order = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      for (const which of order) {
        const gateway = await stack.startGateway({ policies: which === 'on' ? POLICY_ON : POLICY_OFF });
        const tunnel = await stack.connect();
        try {
          // Warm up: connections, the classifier cache, the JIT.
          pgbench(bindir, ['-S', '-n', '-T', '2', '-c', String(clients), '-j', '2', '-M', mode, tunnel.url]);
          tps[which].push(pgbench(bindir, [...runArgs(mode), tunnel.url]).tps);
        } finally {
          tunnel.stop();
          await gateway.stop();
        }
      }
    }
    const on = median(tps.on);
    const off = median(tps.off);
    results[mode] = { direct: median(direct), off, on, loss: (1 - on / off) * 100 };
    console.log(
      `  -M ${mode.padEnd(8)} direct ${fmt(median(direct))} tps | gateway, policy off ${fmt(off)} tps | policy on ${fmt(on)} tps | loss ${(
        (1 - on / off) * 100
      ).toFixed(
        1,
      )} % (runs on: ${tps.on.map(Math.round).join(', ')}; off: ${tps.off.map(Math.round).join(', ')})`,
    );
  }
  const worst = Math.max(results.simple.loss, results.prepared.loss);
  console.log(`policy on vs off, worst mode: ${worst.toFixed(1)} % loss (target: at most 10 %)`);
} finally {
  await stack.stop();
}

console.log('');
const classifier = spawnSync(
  process.execPath,
  [join(dirname(fileURLToPath(import.meta.url)), 'classifier.mjs'), '2'],
  {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
process.stdout.write(classifier.stdout);
