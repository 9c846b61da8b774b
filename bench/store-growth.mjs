#!/usr/bin/env node
/**
 * How much the audit store grows per statement (docs/scaling.md): N statements written as the gateway
 * writes them — a `statement` record (write-ahead) and a `statement.result` record each, with the fields
 * and sizes of a pgbench TPC-B statement — into the PostgreSQL store and the SQLite store; then the
 * on-disk size (table, TOAST and indexes; the SQLite file after a checkpoint) per million statements.
 * Sizes, not times: the machine's load does not change them.
 *
 *   npm run build && node bench/store-growth.mjs [N=20000]
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuditLog } from '../dist/gateway/audit/log.js';
import { startPostgres } from '../dist/gateway/dev/postgres.js';
import { openStore } from '../dist/gateway/store/index.js';

const N = Number(process.argv[2] ?? 20_000);
const identity = {
  issuer: 'https://idp.example.com',
  subject: 'ci-bot',
  name: 'CI service account',
  groups: ['ci-deploy'],
  kind: 'service',
};
const session = (i) => ({
  identity,
  source: '10.0.3.17:51234',
  connection: 'prod-db',
  session: `8f14e45f-ceea-467f-a8a2-${String(Math.floor(i / 500)).padStart(12, '0')}`,
});
const statement = (i) => ({
  ...session(i),
  type: 'statement',
  data: {
    statement_id: `8f14e45f-${i}`,
    text: `UPDATE pgbench_accounts SET abalance = abalance + ${(i * 7919) % 5000} WHERE aid = ${(i * 104729) % 1000000}`,
    fingerprint: 'a3c5b1e2f0d94e77',
    class: 'write',
    kind: 'UpdateStmt',
    relations: ['public.pgbench_accounts'],
    functions: [],
    flags: [],
    decision: 'allow',
    policy: 'ci',
    rule: 'work',
    reason: 'rule "work" allows write',
    protocol: 'simple',
  },
});
const result = (i) => ({
  ...session(i),
  type: 'statement.result',
  data: { statement_id: `8f14e45f-${i}`, tag: 'UPDATE 1', rows: 1, bytes: 0, duration_ms: 0.41 },
});

async function fill(store) {
  const log = await createAuditLog(store, { lazyMs: 1 });
  for (let i = 0; i < N; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 500); j++)
      batch.push(log.append(statement(j)), log.append(result(j)));
    await Promise.all(batch);
  }
  await log.close();
}

const perMillion = (bytes) => `${(((bytes / N) * 1e6) / 2 ** 30).toFixed(2)} GiB`;

const pg = await startPostgres();
pg.psql('CREATE DATABASE hoop;');
const pgStore = await openStore(
  { url: pg.url('hoop') },
  { dataDir: mkdtempSync(join(tmpdir(), 'hoop-growth-')) },
);
await fill(pgStore);
pg.psql('VACUUM ANALYZE audit_records;', 'hoop');
const [table, total] = pg
  .psql("select pg_relation_size('audit_records'), pg_total_relation_size('audit_records')", 'hoop')
  .trim()
  .split('|')
  .map(Number);
const avgText = Number(pg.psql('select avg(length(record)) from audit_records', 'hoop').trim());
await pgStore.close();
pg.stop();

const dir = mkdtempSync(join(tmpdir(), 'hoop-growth-sqlite-'));
const sqlite = await openStore({ path: dir });
await fill(sqlite);
await sqlite.close();
// The database file and what is left in its write-ahead log.
const sizeOf = (f) => (existsSync(f) ? statSync(f).size : 0);
const sqliteBytes = sizeOf(join(dir, 'hoop.db')) + sizeOf(join(dir, 'hoop.db-wal'));

console.log(`store growth: ${N} statements (a statement and a statement.result record each), TPC-B-sized`);
console.log(`  average record text:               ${avgText.toFixed(0)} bytes`);
console.log(
  `  PostgreSQL audit_records (heap):   ${(table / N).toFixed(0)} bytes per statement = ${perMillion(table)} per million`,
);
console.log(
  `  PostgreSQL with TOAST and indexes: ${(total / N).toFixed(0)} bytes per statement = ${perMillion(total)} per million`,
);
console.log(
  `  SQLite file:                       ${(sqliteBytes / N).toFixed(0)} bytes per statement = ${perMillion(sqliteBytes)} per million`,
);
process.exit(0);
