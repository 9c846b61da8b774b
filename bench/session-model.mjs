#!/usr/bin/env node
// The session model's differential property test (test/integration/session-model.test.ts) at scale:
// thousands of random seeded sequences of SQL and protocol operations through the gateway's session
// path against a real PostgreSQL. Usage: node bench/session-model.mjs [runs] [seed]
import { spawnSync } from 'node:child_process';

const runs = process.argv[2] ?? '3000';
const seed = process.argv[3] ?? String(Date.now() % 2147483647);
console.log(
  `session model: ${runs} sequences, seed ${seed} (replay: node bench/session-model.mjs ${runs} ${seed})`,
);
const r = spawnSync('npx', ['vitest', 'run', 'test/integration/session-model.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, HOOP_MODEL_RUNS: runs, HOOP_MODEL_SEED: seed },
});
process.exit(r.status ?? 1);
