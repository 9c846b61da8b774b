#!/usr/bin/env node
// Issue 8's cost: one 1,000,000-row result through the full path — a Postgres client → hoopctl
// connect → hoop-gateway → PostgreSQL — with two masked columns (partial masks on ssn and card_pan,
// rewritten in every DataRow) vs the same gateway path without masking rules, and the database
// direct for scale. Reports rows/s, MB/s, the throughput loss, and the gateway's peak RSS during each
// run (memory must stay flat: rows are rewritten one at a time, never buffered). Prints figures,
// asserts nothing.
//
//   npm run build && node bench/masking.mjs [rows=1000000] [rounds=3]
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { startBenchStack } from './lib/stack.mjs';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const QUERY = 'select id, name, ssn, card_pan, country from bench_people';

const RULES = `
    rules:
      - { name: reads, allow: [read, transaction, session] }`;
const MASKING_OFF = `
policies:
  - name: ci-read
    groups: [ci-deploy]
    connections: [prod-db]${RULES}
`;
const MASKING_ON = `
policies:
  - name: ci-read
    groups: [ci-deploy]
    connections: [prod-db]${RULES}
    masking:
      - { name: ssn, columns: [public.bench_people.ssn], mask: partial }
      - { name: pan, columns: [public.bench_people.card_pan], mask: partial }
`;

/** Run the query once, counting rows and bytes without materialising them; resolves with figures. */
async function fetchAll(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = process.hrtime.bigint();
    let rows = 0;
    let sample;
    await new Promise((resolve, reject) => {
      client.query({
        submit(connection) {
          connection.query(QUERY);
        },
        handleRowDescription() {},
        handleDataRow(msg) {
          rows++;
          if (rows === 1) sample = msg.fields.map(String);
        },
        handleCommandComplete() {},
        handleEmptyQuery() {},
        handleError(err) {
          reject(err);
        },
        handleReadyForQuery() {
          resolve();
        },
      });
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { rows, seconds, sample };
  } finally {
    await client.end();
  }
}

/** The gateway process (by its config file) and a sampler of its peak RSS in MB. */
function rssSampler(configFile) {
  const pid = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .find((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(configFile);
      } catch {
        return false;
      }
    });
  const read = () => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : Number.NaN;
    } catch {
      return Number.NaN;
    }
  };
  let peak = 0;
  let timer;
  return {
    start() {
      peak = read();
      timer = setInterval(() => {
        peak = Math.max(peak, read());
      }, 50);
    },
    stop() {
      clearInterval(timer);
      return peak;
    },
    now: read,
  };
}

const stack = await startBenchStack();
try {
  process.stdout.write(
    `hoop masking bench: ${ROWS.toLocaleString('en')} rows, two masked columns, best of ${ROUNDS}\n`,
  );
  stack.psql(`SET ROLE hoop_gateway;
    CREATE TABLE public.bench_people AS
      SELECT g AS id, 'Person number ' || g AS name,
             lpad((g % 1000)::text, 3, '0') || '-' || lpad((g % 100)::text, 2, '0') || '-' || lpad((g % 10000)::text, 4, '0') AS ssn,
             '4111' || lpad(g::text, 12, '0') AS card_pan, 'GB' AS country
      FROM generate_series(1, ${ROWS}) AS g;
    ANALYZE public.bench_people;`);

  const results = {};
  const direct = [];
  for (let i = 0; i < ROUNDS; i++) direct.push(await fetchAll(stack.directUrl));
  results.direct = {
    best: Math.min(...direct.map((r) => r.seconds)),
    rows: direct[0].rows,
    sample: direct[0].sample,
  };

  for (const [name, policies] of [
    ['masking off', MASKING_OFF],
    ['masking on', MASKING_ON],
  ]) {
    const gw = await stack.startGateway({ policies });
    const tunnel = await stack.connect();
    const rss = rssSampler(gw.configFile);
    await fetchAll(tunnel.url); // warm-up: catalog, JIT
    const idle = rss.now();
    const runs = [];
    rss.start();
    for (let i = 0; i < ROUNDS; i++) runs.push(await fetchAll(tunnel.url));
    const peak = rss.stop();
    results[name] = {
      best: Math.min(...runs.map((r) => r.seconds)),
      rows: runs[0].rows,
      sample: runs[0].sample,
      idle,
      peak,
    };
    tunnel.stop();
    await gw.stop();
  }

  const mb = (ROWS * 60) / 1e6; // rough payload size per run, for MB/s
  const line = (label, r) =>
    `${label.padEnd(14)} ${String(r.rows).padStart(9)} rows  ${r.best.toFixed(2).padStart(6)} s  ${Math.round(
      r.rows / r.best,
    )
      .toLocaleString('en')
      .padStart(11)} rows/s  ${(mb / r.best).toFixed(1).padStart(6)} MB/s${
      r.peak ? `  gateway RSS ${r.idle.toFixed(0)} MB idle → ${r.peak.toFixed(0)} MB peak` : ''
    }`;
  process.stdout.write(`${line('direct', results.direct)}\n`);
  process.stdout.write(`${line('masking off', results['masking off'])}\n`);
  process.stdout.write(`${line('masking on', results['masking on'])}\n`);
  const loss = 1 - results['masking off'].best / results['masking on'].best;
  process.stdout.write(`throughput loss from masking: ${(loss * 100).toFixed(1)} % (target: at most 30 %)\n`);
  process.stdout.write(`first row, masking off: ${results['masking off'].sample.join(' | ')}\n`);
  process.stdout.write(`first row, masking on:  ${results['masking on'].sample.join(' | ')}\n`);
} finally {
  await stack.stop();
}
