#!/usr/bin/env node
/**
 * Records per second each audit store sustains with group commit, at concurrency 1, 16 and 64.
 * Run after `npm run build`: node bench/store.mjs [--seconds 3]
 * Each store at both audit.durability settings: crash (the default: SQLite WAL synchronous=NORMAL, the
 * PostgreSQL store's sessions synchronous_commit=off) and power (SQLite synchronous=FULL, PostgreSQL
 * synchronous_commit=on). PostgreSQL: a throwaway cluster with fsync on (the harness turns it off).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSigningKey } from '../dist/gateway/audit/checkpoint.js';
import { createAuditLog } from '../dist/gateway/audit/log.js';
import { openStore } from '../dist/gateway/store/index.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 3;
const CONCURRENCY = [1, 16, 64];

// --- a throwaway PostgreSQL (a small copy of test/harness/postgres.ts) ------------------------------
function pgBindir() {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {}
  const base = '/usr/lib/postgresql';
  const v = readdirSync(base)
    .filter((d) => existsSync(join(base, d, 'bin', 'initdb')))
    .sort((a, b) => b - a)[0];
  return join(base, v, 'bin');
}
const isRoot = process.getuid?.() === 0;
function asOwner(bin, args) {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} failed: ${r.stderr || r.stdout}`);
}
const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
async function startPostgres() {
  const bindir = pgBindir();
  const root = mkdtempSync(join(tmpdir(), 'hoop-bench-pg-'));
  const data = join(root, 'data');
  const sock = join(root, 'sock');
  mkdirSync(sock);
  writeFileSync(join(root, 'pw'), 'bench\n');
  if (isRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    for (const p of [root, sock, join(root, 'pw')]) chownSync(p, uid, gid);
  }
  chmodSync(root, 0o700);
  asOwner(join(bindir, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    join(root, 'pw'),
    '--auth-host=scram-sha-256',
    '--auth-local=trust',
    '--no-sync',
  ]);
  const port = await freePort();
  asOwner(join(bindir, 'pg_ctl'), [
    '-D',
    data,
    '-l',
    join(root, 'log'),
    '-w',
    'start',
    '-o',
    `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on`,
  ]);
  return {
    url: `postgres://postgres:bench@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        asOwner(join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {}
      rmSync(root, { recursive: true, force: true });
    },
  };
}

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
const pg = await startPostgres();
const rows = [];
try {
  for (const [name, config, durability] of [
    ['sqlite, durability crash', { path: join(dataRoot, 'sqlite-crash') }, 'crash'],
    ['sqlite, durability power', { path: join(dataRoot, 'sqlite-power') }, 'power'],
    ['postgresql, durability crash', { url: pg.url }, 'crash'],
    ['postgresql, durability power', { url: pg.url }, 'power'],
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
