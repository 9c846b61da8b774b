/**
 * Memory per idle tunnel (docs/scaling.md): one gateway over TLS (the product's path, SQLite store),
 * `hoopctl connect` in front, and N sessions opened through it — each logged in with the one-time password,
 * upstream connection made, one `select 1` run — then left idle. The gateway's resident memory (VmRSS) and
 * V8 heap (its /metrics) before and after give the cost of one idle session; closing them all shows what
 * is given back.
 *
 * With --upstream-tls the gateway reaches PostgreSQL over TLS (verify-full), as in production.
 *
 *   npm run build && node bench/idle-tunnels.mjs [N=1000] [--upstream-tls]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localGatewayConfig } from '../dist/gateway/dev/config.js';
import { SEED_SQL } from '../dist/gateway/dev/dev.js';
import { startDevIdp } from '../dist/gateway/dev/idp.js';
import { freePort } from '../dist/gateway/dev/ports.js';
import { startPostgres } from '../dist/gateway/dev/postgres.js';
import { makeCerts, rawConnect, statusKb } from './lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1000);
const UPSTREAM_TLS = process.argv.includes('--upstream-tls');
const BATCH = 25;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const POLICIES = `
policies:
  - name: bench
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: all, allow: [read, write, transaction, session] }
`;

function waitFor(child, pattern) {
  return new Promise((res, rej) => {
    let seen = '';
    const on = (c) => {
      seen += c.toString();
      const m = pattern.exec(seen);
      if (m) res(m);
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => rej(new Error(`exited ${code}: ${seen}`)));
  });
}

async function heapUsed(diag) {
  const text = await (await fetch(`${diag}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('hoop_nodejs_heap_size_used_bytes '));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

async function settle(pid) {
  // Let timers, GC and the allocator settle; take the lowest of a few readings.
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    await sleep(600);
    low = Math.min(low, statusKb(pid, 'VmRSS'));
  }
  return low;
}

const dir = mkdtempSync(join(tmpdir(), 'hoop-idle-'));
const certs = makeCerts(dir);
const pg = await startPostgres({
  settings: { max_connections: String(N + 100) },
  tls: UPSTREAM_TLS ? { cert: certs.cert, key: certs.key } : undefined,
});
const dbPassword = `idle-${Math.random().toString(36).slice(2)}`;
pg.psql(`\\set gw_password '${dbPassword}'\n${SEED_SQL}`);
const port = await freePort();
const diagPort = await freePort();
const url = `https://localhost:${port}`;
const diag = `http://127.0.0.1:${diagPort}`;
const idp = await startDevIdp({ audience: url });
const config = join(dir, 'gateway.yaml');
writeFileSync(
  config,
  localGatewayConfig({
    port,
    tls: { cert: certs.cert, key: certs.key },
    issuer: idp.issuer,
    audience: url,
    dbPort: pg.port,
    password: { env: 'IDLE_DB_PASSWORD' },
    connectionTls: UPSTREAM_TLS ? `{ mode: verify-full, ca: ${certs.ca} }` : undefined,
    policies: POLICIES,
    extra: `diagnostics:\n  listen: 127.0.0.1:${diagPort}\n`,
  }),
);
const gateway = spawn(process.execPath, [join(ROOT, 'bin', 'hoop-gateway'), '--config', config], {
  env: { ...process.env, IDLE_DB_PASSWORD: dbPassword, HOOP_LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'pipe'],
});
gateway.stderr.on('data', () => {});
await waitFor(gateway, /hoop-gateway listening/);
const connect = spawn(process.execPath, [join(ROOT, 'bin', 'hoopctl'), 'connect', 'prod-db'], {
  env: {
    ...process.env,
    HOOPCTL_HOME: mkdtempSync(join(tmpdir(), 'hoop-idle-home-')),
    HOOPCTL_GATEWAY: url,
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CLIENT_ID: 'ci-bot',
    HOOPCTL_CLIENT_SECRET: 'ci-bot-secret',
    HOOPCTL_CA_FILE: certs.ca,
    NO_COLOR: '1',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
const m = await waitFor(connect, /psql "postgresql:\/\/hoop:([^@]+)@127\.0\.0\.1:(\d+)\//);
const target = { port: Number(m[2]), user: 'hoop', database: 'prod-db', password: decodeURIComponent(m[1]) };

const open = async (count) => {
  const sessions = [];
  for (let i = 0; i < count; i += BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BATCH, count - i) }, async () => {
        const s = await rawConnect(target);
        await s.query('select 1');
        return s;
      }),
    );
    sessions.push(...batch);
  }
  return sessions;
};

try {
  // Warm up: code paths compiled, caches and pools filled, as in a gateway that has been running.
  for (const s of await open(50)) s.close();
  const rssBefore = await settle(gateway.pid);
  const heapBefore = await heapUsed(diag);
  const cliBefore = statusKb(connect.pid, 'VmRSS');

  const started = Date.now();
  const sessions = await open(N);
  const openSeconds = (Date.now() - started) / 1000;
  const rssAfter = await settle(gateway.pid);
  const heapAfter = await heapUsed(diag);
  const cliAfter = statusKb(connect.pid, 'VmRSS');
  const backends = Number(
    pg.psql("select count(*) from pg_stat_activity where usename = 'hoop_gateway'").trim(),
  );

  for (const s of sessions) s.close();
  await sleep(2000);
  const rssClosed = await settle(gateway.pid);

  const perKb = (a, b) => ((b - a) / N).toFixed(1);
  console.log(
    `idle tunnels: ${N} sessions through hoopctl connect over TLS (opened in ${openSeconds.toFixed(1)} s)`,
  );
  console.log(`  upstream backends open:       ${backends}`);
  console.log(
    `  gateway RSS:                  ${rssBefore} kB -> ${rssAfter} kB  = ${perKb(rssBefore, rssAfter)} kB per idle tunnel`,
  );
  console.log(
    `  gateway V8 heap used:         ${(heapBefore / 1024).toFixed(0)} kB -> ${(heapAfter / 1024).toFixed(0)} kB  = ${((heapAfter - heapBefore) / 1024 / N).toFixed(1)} kB per idle tunnel`,
  );
  console.log(`  gateway RSS after closing:    ${rssClosed} kB`);
  console.log(
    `  hoopctl connect RSS:          ${cliBefore} kB -> ${cliAfter} kB  = ${perKb(cliBefore, cliAfter)} kB per tunnel`,
  );
} finally {
  connect.kill('SIGTERM');
  gateway.kill('SIGINT');
  await idp.stop();
  pg.stop();
}
process.exit(0);
