#!/usr/bin/env node
// The fuzz properties of test/unit/fuzz/ (framers, decoders, the client handshake, the protocol core
// and its session model) at scale: every property's CI budget times `scale` (17 → a little over one
// million generated inputs in total), with a fresh seed unless one is given. Prints each property's
// inputs and rate, the total, and the CPU time the run took; fails (exit 1) on any counterexample,
// which fast-check prints with its seed and path for replay.
// Usage: node bench/fuzz.mjs [scale] [seed]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scale = process.argv[2] ?? '17';
const seed = process.argv[3] ?? String(Date.now() % 2147483647);
const dir = mkdtempSync(join(tmpdir(), 'hoop-fuzz-'));
const report = join(dir, 'report.jsonl');
console.log(`fuzz: scale ${scale}, seed ${seed} (replay: node bench/fuzz.mjs ${scale} ${seed})`);

const cpuBefore = childrenCpuSeconds();
const started = process.hrtime.bigint();
// One property runs for minutes at large scales: the test timeout is lifted.
const run = spawnSync('npx', ['vitest', 'run', 'test/unit/fuzz', '--testTimeout', '3600000'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    HOOP_FUZZ_SCALE: scale,
    HOOP_FUZZ_SEED: seed,
    HOOP_FUZZ_REPORT: report,
  },
});
const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpuSeconds = childrenCpuSeconds() - cpuBefore;

let rows = [];
try {
  rows = readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map(JSON.parse);
} catch {
  // No report: vitest failed before any property finished (its output says why).
}
rmSync(dir, { recursive: true, force: true });

let total = 0;
for (const { name, inputs, ms } of rows) {
  total += inputs;
  const rate = Math.round(inputs / (ms / 1000));
  console.log(`${name.padEnd(44)} ${String(inputs).padStart(9)} inputs ${String(rate).padStart(8)}/s`);
}
console.log(
  `total: ${total} generated inputs, ${Math.round(total / wallSeconds)}/s over ${wallSeconds.toFixed(0)} s wall, ` +
    `${cpuSeconds.toFixed(0)} s CPU; ${run.status === 0 ? 'no crash, no unhandled rejection' : 'FAILED'}`,
);
process.exit(run.status ?? 1);

/** CPU seconds (user + system) of this process's finished children, from /proc (Linux). */
function childrenCpuSeconds() {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    // Fields 16 and 17 of stat (cutime, cstime) are at 13 and 14 after the command name; ticks of 1/100 s.
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return Number.NaN;
  }
}
