/**
 * One writer process for bench/replicas.mjs: opens the PostgreSQL store as a gateway replica would and
 * appends `statement` records with `concurrency` appends in flight for `seconds`; prints the count as JSON.
 *   node bench/lib/append-writer.mjs <store-url> <seconds> <concurrency> <dataDir>
 */
import { loadOrCreateSigningKey } from '../../dist/gateway/audit/checkpoint.js';
import { createAuditLog } from '../../dist/gateway/audit/log.js';
import { openStore } from '../../dist/gateway/store/index.js';

const [url, seconds, concurrency, dataDir] = process.argv.slice(2);
const store = await openStore({ url }, { dataDir });
const log = await createAuditLog(store, {
  // Each writer is a replica with its own chain, as each gateway of a deployment is.
  replica: `writer-${process.pid}`,
  signingKey: loadOrCreateSigningKey({ dataDir: store.dataDir }),
  checkpoint: { every: 1000, intervalMs: 60_000 },
});
const record = (i) => ({
  type: 'statement',
  identity: { issuer: 'https://idp.example.com', subject: 'bench', groups: ['engineering'], kind: 'human' },
  source: '127.0.0.1:5000',
  connection: 'prod-db',
  session: `s-${process.pid}-${i % 50}`,
  data: {
    statement_id: String(i),
    text: 'select * from orders where id = $1',
    decision: 'allow',
    rule: 'reads',
  },
});
// Start together: the parent sends "go" on stdin once every writer is ready.
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
const deadline = Date.now() + Number(seconds) * 1000;
let appended = 0;
let failed = 0;
const worker = async () => {
  while (Date.now() < deadline) {
    try {
      await log.append(record(appended));
      appended++;
    } catch {
      failed++;
    }
  }
};
const cpu = process.cpuUsage();
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const used = process.cpuUsage(cpu);
await log.close();
await store.close();
process.stdout.write(
  `${JSON.stringify({ appended, failed, cpuSeconds: (used.user + used.system) / 1e6 })}\n`,
);
process.exit(0);
