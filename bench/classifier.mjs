#!/usr/bin/env node
// Classifier throughput: parses (classifications) per second, uncached and cached, on a mix of statements.
// Run after `npm run build`:  node bench/classifier.mjs [seconds-per-run]
import { classify, classifyUncached, clearClassifyCache } from '../dist/gateway/sql/classify.js';
import { loadSqlParser } from '../dist/gateway/sql/parser.js';

const MIX = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 48213',
  "select * from orders o join customers c on c.id = o.customer_id where o.created_at > now() - interval '1 day' order by o.id limit 50",
  'UPDATE pgbench_accounts SET abalance = abalance + -2843 WHERE aid = 78001',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 40413, 1205, CURRENT_TIMESTAMP)',
  "with recent as (select * from events where ts > now() - interval '1 hour') select kind, count(*) from recent group by kind",
  'BEGIN',
  'COMMIT',
  "SET application_name = 'bench'",
  'delete from sessions where expires_at < now() returning id',
  "select pg_read_file('/etc/passwd')",
];

const seconds = Number(process.argv[2] ?? 2);

function run(label, fn) {
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) fn(MIX[(n + i) % MIX.length]);
    n += 100;
  }
  const perSecond = Math.round(n / seconds);
  console.log(`${label.padEnd(34)} ${perSecond.toLocaleString('en-US').padStart(12)} statements/s`);
  return perSecond;
}

await loadSqlParser();
clearClassifyCache();
console.log(`classifier, ${MIX.length}-statement mix, ${seconds}s per run, node ${process.version}`);
// Uncached: every call parses with the WASM parser and walks the tree. Unique texts defeat the cache too.
const uncached = run('uncached (parse + classify)', (sql) => classifyUncached(sql));
let counter = 0;
run('uncached via classify(), unique text', (sql) => classify(`${sql} -- ${counter++}`));
clearClassifyCache();
const cached = run('cached (same texts again)', (sql) => classify(sql));
console.log(`cache speed-up: ${(cached / uncached).toFixed(0)}x`);
