#!/usr/bin/env node
/**
 * Connect/disconnect cycles through the full path (client → hoopctl connect → WebSocket/TLS →
 * gateway → PostgreSQL), printing the gateway's open fds and RSS as it goes. The integration test
 * (test/integration/teardown.test.ts) runs 300 cycles; this runs the 10,000.
 * Usage (after npm run build): node bench/leak.mjs [--cycles 10000] [--parallel 2]
 */
import { readdirSync } from 'node:fs';
import { rawConnect, startBench, statusKb } from './lib.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const CYCLES = arg('cycles', 10_000);
const PARALLEL = arg('parallel', 2);

const bench = await startBench({ scale: 1, pgbouncer: false });
const full = bench.paths.full;
const fds = () => readdirSync(`/proc/${full.pid}/fd`).length;
const report = (label) =>
  console.log(
    `${label}: fds ${fds()}, RSS ${Math.round(statusKb(full.pid, 'VmRSS') / 1024)} MB, ` +
      `backends ${bench.pg.psql("select count(*) from pg_stat_activity where usename = 'hoop_gateway'").trim()}`,
  );

let done = 0;
const worker = async (n) => {
  for (let i = 0; i < n; i++) {
    const c = await rawConnect(full);
    if (i % 10 === 0) await c.query('select 1');
    c.close();
    await new Promise((r) => c.socket.once('close', r));
    if (++done % 1000 === 0) report(`${done} cycles`);
  }
};
await worker(50);
done = 0;
report('after warm-up');
const started = Date.now();
await Promise.all(Array.from({ length: PARALLEL }, () => worker(Math.ceil(CYCLES / PARALLEL))));
await new Promise((r) => setTimeout(r, 2000));
report(`end (${done} cycles in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
bench.stop();
setTimeout(() => process.exit(0), 500).unref();
