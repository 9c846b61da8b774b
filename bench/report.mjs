#!/usr/bin/env node
// The compliance report's core on a synthetic year: N chained records (statements, results, refusals,
// failed logins from many sources, approvals, sessions of 200 identities) fed one at a time through the
// verifier and the evidence collector, as the gateway and `report verify --export` do. Prints CPU per
// record and the heap after a full GC at intervals: memory must stay flat as records grow.
//
//   npm run build && node --expose-gc bench/report.mjs [records=1000000]
import { GENESIS_HASH } from '../dist/src/shared/audit.js';
import { recordHash } from '../dist/src/shared/audit-chain.js';
import { PeriodReader } from '../dist/src/shared/report/index.js';

const N = Number(process.argv[2] ?? 1_000_000);
const YEAR_MS = 365 * 86_400_000;
const START = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms) => `${new Date(ms).toISOString().slice(0, -1)}000Z`;
const people = Array.from({ length: 200 }, (_, i) => ({
  issuer: 'https://idp.example.com',
  subject: `user${i}`,
  groups: ['engineering'],
  kind: i % 10 === 0 ? 'service' : 'human',
}));

function* records() {
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= N; seq++) {
    const time = iso(START + Math.floor((seq / N) * YEAR_MS));
    const identity = people[seq % people.length];
    const base = {
      seq,
      time,
      identity,
      source: `10.0.${seq % 256}.${(seq >> 8) % 256}:5000`,
      connection: 'prod-db',
      session: `s${seq >> 6}`,
    };
    let content;
    switch (seq % 10) {
      case 0:
        content = { ...base, type: 'auth.failed', data: { reason: 'malformed', count: 3 } };
        break;
      case 1:
        content = {
          ...base,
          type: 'policy.blocked',
          data: { rule: 'no-admin', reason: 'dcl is denied', text: 'grant all' },
        };
        break;
      case 2:
        content = {
          ...base,
          type: 'approval.requested',
          data: { approval_id: seq, requester: identity.subject },
        };
        break;
      case 3:
        content = {
          ...base,
          type: 'approval.granted',
          data: { approval_id: seq - 1, requester: identity.subject, status: 'approved' },
        };
        break;
      case 4:
        content = { ...base, type: 'session.started', data: { client: 'connect' } };
        break;
      default:
        content = {
          ...base,
          type: 'statement',
          data: {
            statement_id: `x${seq}`,
            text: 'select * from customers where id = $1',
            class: seq % 7 ? 'read' : 'write',
            decision: seq % 13 ? 'allow' : 'deny',
            rule: 'reads',
            masked_columns: seq % 3 ? undefined : ['public.customers.ssn'],
          },
        };
    }
    const hash = recordHash(prev, content);
    yield { ...content, prev, hash };
    prev = hash;
  }
}

const mb = () => (process.memoryUsage().heapUsed / 1048576).toFixed(1);
const gc = globalThis.gc ?? (() => {});

// Pass 1: generating (and hashing) the records alone, to subtract.
let t0 = process.cpuUsage();
for (const _ of records());
const generate = process.cpuUsage(t0);

// Pass 2: the same records through the report core (no checkpoints: verification reports "unsealed").
const reader = new PeriodReader({ from: iso(START), to: iso(START + YEAR_MS + 1) }, [], []);
gc();
console.log(`records        heap MB (after GC)`);
t0 = process.cpuUsage();
let n = 0;
for (const record of records()) {
  reader.add(record);
  if (++n % Math.floor(N / 4) === 0) {
    gc();
    console.log(`${String(n).padStart(10)}     ${mb()}`);
  }
}
const ev = reader.finish();
const total = process.cpuUsage(t0);
const cpu = (u) => u.user + u.system;
console.log(
  `\n${N} records: ${((cpu(total) - cpu(generate)) / N).toFixed(2)} µs CPU per record in the report core (verify + collect)`,
);
console.log(
  `identities ${ev.identities.entries.size}, failing sources ${ev.failedBySource.size} (capped), exceptions kept ${ev.exceptions.failed_auth.kept.length} of ${ev.exceptions.failed_auth.total}`,
);
