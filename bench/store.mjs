#!/usr/bin/env node
/**
 * Records per second each audit store sustains with group commit, at concurrency 1, 16 and 64.
 * Run after `npm run build`: node bench/store.mjs [--seconds 3]
 * Each store at both audit.durability settings: crash (the default: SQLite WAL synchronous=NORMAL, the
 * PostgreSQL store's sessions synchronous_commit=off) and power (SQLite synchronous=FULL, PostgreSQL
 * synchronous_commit=on). PostgreSQL: a throwaway cluster with fsync on (the harness turns it off).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSigningKey } from '../dist/gateway/audit/checkpoint.js';
import { createAuditLog } from '../dist/gateway/audit/log.js';
import { startPostgres } from '../dist/gateway/dev/postgres.js';
import { openStore } from '../dist/gateway/store/index.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const CONCURRENCY = [1, 16, 64];

// --- the measurement ---------------------------------------------------------------------------------
const record = (i) => ({
  type: 'statement',
  identity: { issuer: 'https://idp.example.com', subject: 'bench', groups: ['engineering'], kind: 'human' },
  source: '127.0.0.1:5000',
  connection: 'prod-db',
  session: `s-${i % 50}`,
  data: {
    statement_id: String(i),
    text: 'select * from orders where id = $1',
    decision: 'allow',
    rule: 'reads',
  },
});

async function measure(store, concurrency) {
  const key = loadOrCreateSigningKey({ dataDir: store.dataDir });
  const log = await createAuditLog(store, {
    signingKey: key,
    checkpoint: { every: 1000, intervalMs: 60_000 },
  });
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  // `concurrency` writers, each waiting for its record to be durable before the next (as a session does).
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        await log.append(record(done));
        done++;
      }
    }),
  );
  await log.close();
  return done / seconds;
}

const dataRoot = mkdtempSync(join(tmpdir(), 'hoop-bench-'));
// The same throwaway cluster as the tests and --dev, but with fsync on: this measures durability.
const pg = await startPostgres({
  settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' },
});
const rows = [];
try {
  for (const [name, config, durability] of [
    ['sqlite, durability crash', { path: join(dataRoot, 'sqlite-crash') }, 'crash'],
    ['sqlite, durability power', { path: join(dataRoot, 'sqlite-power') }, 'power'],
    ['postgresql, durability crash', { url: pg.url() }, 'crash'],
    ['postgresql, durability power', { url: pg.url() }, 'power'],
  ]) {
    const store = await openStore(config, { dataDir: join(dataRoot, 'pgdata'), durability });
    const figures = [];
    for (const c of CONCURRENCY) figures.push(Math.round(await measure(store, c)));
    await store.close();
    rows.push([name, ...figures]);
  }
} finally {
  pg.stop();
  rmSync(dataRoot, { recursive: true, force: true });
}
console.log(`audit records/second, group commit, ${seconds} s per cell, each writer awaits durability`);
console.log(['store'.padEnd(32), ...CONCURRENCY.map((c) => `c=${c}`.padStart(9))].join(''));
for (const [name, ...f] of rows)
  console.log([name.padEnd(32), ...f.map((v) => String(v).padStart(9))].join(''));
