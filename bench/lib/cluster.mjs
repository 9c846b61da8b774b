/**
 * Several gateway replicas on one PostgreSQL store behind HAProxy, all real processes, as an operator runs
 * them (docs/deploy.md): TLS end to end at the gateways, HAProxy in TCP mode with deploy/haproxy/haproxy.cfg
 * (its addresses swapped for local ones), health checks on each gateway's /readyz. Used by
 * test/integration/replicas.test.ts and bench/replicas.mjs. Everything from dist/: build first.
 *
 * The PostgreSQL server holds both the application database (`shop`, with pgbench tables) and the store
 * (`hoop`, its own role); with `logStatements` it logs every statement (log_line_prefix '%u|').
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOrCreateSigningKey, SIGNING_PUBLIC_KEY_FILE } from '../../dist/gateway/audit/checkpoint.js';
import { localGatewayConfig } from '../../dist/gateway/dev/config.js';
import { SEED_SQL } from '../../dist/gateway/dev/dev.js';
import { DEV_CLIENTS, startDevIdp } from '../../dist/gateway/dev/idp.js';
import { freePort } from '../../dist/gateway/dev/ports.js';
import { startPostgres } from '../../dist/gateway/dev/postgres.js';
import { children, makeCerts, waitForOutput } from '../lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GATEWAY = join(ROOT, 'bin', 'hoop-gateway');
const HOOPCTL = join(ROOT, 'bin', 'hoopctl');

/** Service accounts of the cluster's IdP: a CI job, a reviewer and an auditor (client credentials). */
export const CLIENTS = {
  ci: { clientId: 'ci-bot', secret: 'ci-bot-secret' },
  reviewer: { clientId: 'reviewer-bot', secret: 'reviewer-bot-secret', groups: ['db-reviewers'] },
  auditor: { clientId: 'auditor-bot', secret: 'auditor-bot-secret', groups: ['audit'] },
};

/** CI may read and write; DDL needs a reviewer's approval (the cross-replica approval check uses it). */
const POLICIES = `
policies:
  - name: ci
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: schema-changes, approve: [ddl], approvers: [db-reviewers], timeout: 5m }
      - { name: work, allow: [read, write, transaction, session, utility] }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: auditors
    groups: [audit]
    audit: true
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Ask HAProxy's stats socket; resolves with its answer. */
function haproxyCommand(socketPath, command) {
  return new Promise((res, rej) => {
    const socket = netConnect(socketPath);
    let out = '';
    socket.on('data', (c) => {
      out += c.toString();
    });
    socket.on('end', () => res(out));
    socket.on('error', rej);
    socket.write(`${command}\n`);
  });
}

/** The shipped haproxy.cfg with local addresses: its bind, stats socket, servers and global maxconn swapped. */
function haproxyConfig({ port, socket, gateways }) {
  const shipped = readFileSync(join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8');
  const lines = shipped
    .split('\n')
    .filter((l) => !/^\s*server\s/.test(l))
    .map((l) =>
      l
        .replace(/^(\s*)bind\s+\S+/, `$1bind 127.0.0.1:${port}`)
        .replace(/^(\s*)stats socket\s+\S+/, `$1stats socket ${socket}`)
        // Two file descriptors per connection: stay within this machine's limit (20,000 here).
        .replace(/^(\s*)maxconn \d+$/, '$1maxconn 4000'),
    );
  const servers = gateways.map((g) => `  server ${g.id} 127.0.0.1:${g.port} check port ${g.diagPort}`);
  return `${lines.join('\n').trimEnd()}\n${servers.join('\n')}\n`;
}

/**
 * Start PostgreSQL, the IdP, `replicas` gateways on one PostgreSQL store, and HAProxy in front.
 * `grace`: shutdown.grace of every gateway. `scale`: pgbench's scale factor. `logStatements`: log_statement=all.
 */
export async function startCluster({ replicas = 3, grace = '15s', scale = 1, logStatements = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-cluster-'));
  const pg = await startPostgres({
    settings: {
      max_connections: '400',
      ...(logStatements ? { log_statement: "'all'", log_line_prefix: "'%u|'" } : {}),
    },
  });
  const dbPassword = `gw-${Math.random().toString(36).slice(2)}`;
  const storePassword = `store-${Math.random().toString(36).slice(2)}`;
  pg.psql(`\\set gw_password '${dbPassword}'\n${SEED_SQL}`);
  pg.psql(
    `CREATE ROLE hoop_store LOGIN PASSWORD '${storePassword}';\nCREATE DATABASE hoop OWNER hoop_store;`,
  );
  const init = spawnSync(
    'pgbench',
    ['-i', '-q', '-s', String(scale), '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'hoop_gateway', 'shop'],
    { env: { ...process.env, PGPASSWORD: dbPassword }, encoding: 'utf8' },
  );
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  // What ran before the gateways (pgbench -i, directly) is not theirs to have recorded.
  const pgLog = join(pg.dataDir, '..', 'postgres.log');
  const logStart = statSync(pgLog).size;

  const certs = makeCerts(dir);
  const haproxyPort = await freePort();
  const url = `https://localhost:${haproxyPort}`;
  const idp = await startDevIdp({
    audience: url,
    clients: [...DEV_CLIENTS, CLIENTS.reviewer, CLIENTS.auditor],
  });
  const storeUrl = `postgres://hoop_store:${storePassword}@127.0.0.1:${pg.port}/hoop`;

  // Ports are picked as each replica starts (the first one migrates the store, which takes seconds:
  // ports picked up front could be taken meanwhile by another test's connections).
  const gateways = [];
  for (let i = 1; i <= replicas; i++) gateways.push({ id: `gw${i}`, dir: join(dir, `gw${i}`) });
  const pickPorts = async (g) => {
    g.port = await freePort();
    g.diagPort = await freePort();
    g.url = `https://localhost:${g.port}`;
    g.diagUrl = `http://127.0.0.1:${g.diagPort}`;
  };
  // One signing key for every replica, as the Kubernetes manifests mount one Secret into every pod: each
  // replica's chain is then vouched for by a key the others (and the auditor) pin.
  loadOrCreateSigningKey({ dataDir: dir });
  const publicKeyFile = join(dir, SIGNING_PUBLIC_KEY_FILE);
  const startGateway = async (g) => {
    await pickPorts(g);
    mkdirSync(g.dir, { recursive: true });
    const config = join(g.dir, 'gateway.yaml');
    writeFileSync(
      config,
      localGatewayConfig({
        port: g.port,
        tls: { cert: certs.cert, key: certs.key },
        issuer: idp.issuer,
        audience: url,
        store: `  url: ${storeUrl}`,
        dbPort: pg.port,
        password: { env: 'CLUSTER_DB_PASSWORD' },
        policies: POLICIES,
        extra: `diagnostics:\n  listen: 127.0.0.1:${g.diagPort}\nshutdown:\n  grace: ${grace}\naudit:\n  signing_key_file: ${join(dir, 'audit-signing-key.pem')}\n`,
      }),
    );
    const child = spawn(process.execPath, [GATEWAY, '--config', config], {
      env: { ...process.env, CLUSTER_DB_PASSWORD: dbPassword, HOOP_REPLICA_ID: g.id, HOOP_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    g.log = '';
    child.stderr.on('data', (c) => {
      g.log += c.toString();
    });
    g.process = child;
    g.pid = child.pid;
    g.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
    await waitForOutput(child, /hoop-gateway listening/);
  };
  // One at a time: the first migrates the store. A port taken between the pick and the listen: again.
  const startWithFreshPorts = async (g) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startGateway(g);
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(String(err?.message))) throw err;
      }
    }
  };
  try {
    for (const g of gateways) await startWithFreshPorts(g);
  } catch (err) {
    // Nobody gets a stop() for a cluster that did not start: leave no gateway or server behind.
    for (const g of gateways) if (g.process?.exitCode === null) g.process.kill('SIGKILL');
    idp.stop();
    pg.stop();
    throw err;
  }

  const socket = join(dir, 'haproxy.sock');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ port: haproxyPort, socket, gateways }));
  const haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(haproxy);
  let haproxyLog = '';
  haproxy.stdout.on('data', (c) => {
    haproxyLog += c.toString();
  });
  haproxy.stderr.on('data', (c) => {
    haproxyLog += c.toString();
  });

  /** HAProxy's view of each server: `up` and its connection counters. */
  const servers = async () => {
    const csv = await haproxyCommand(socket, 'show stat');
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const names = header.split(',');
    const byId = {};
    for (const row of rows) {
      const f = Object.fromEntries(row.split(',').map((v, i) => [names[i], v]));
      if (f.pxname === 'hoop_gateways' && f.svname.startsWith('gw')) {
        byId[f.svname] = { up: f.status === 'UP', current: Number(f.scur), total: Number(f.stot) };
      }
    }
    return byId;
  };
  const waitServers = async (want, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = await servers().catch(() => ({}));
      if (Object.entries(want).every(([id, up]) => state[id]?.up === up)) return state;
      if (Date.now() > deadline)
        throw new Error(`HAProxy did not see ${JSON.stringify(want)}:\n${haproxyLog}`);
      await sleep(100);
    }
  };
  await waitServers(Object.fromEntries(gateways.map((g) => [g.id, true])));

  const homes = new Map();
  const cliEnv = (client, gateway = url) => {
    const key = `${client.clientId}@${gateway}`;
    if (!homes.has(key)) homes.set(key, mkdtempSync(join(tmpdir(), 'hoop-cluster-home-')));
    return {
      ...process.env,
      HOOPCTL_HOME: homes.get(key),
      HOOPCTL_GATEWAY: gateway,
      HOOPCTL_TOKEN_STORE: 'file',
      HOOPCTL_CA_FILE: certs.ca,
      HOOPCTL_CLIENT_ID: client.clientId,
      HOOPCTL_CLIENT_SECRET: client.secret,
      NO_COLOR: '1',
    };
  };

  return {
    dir,
    /** The replicas' public signing key (PEM file): what an auditor pins (audit verify --public-key). */
    publicKeyFile,
    pg,
    url,
    gateways,
    servers,
    waitServers,
    haproxyLog: () => haproxyLog,
    /** `hoopctl connect prod-db` as `client` through `gateway` (default: HAProxy). */
    async connect({ client = CLIENTS.ci, gateway = url } = {}) {
      const child = spawn(process.execPath, [HOOPCTL, 'connect', 'prod-db'], {
        env: cliEnv(client, gateway),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      const m = await waitForOutput(child, /psql "(postgresql:\/\/hoop:([^@]+)@127\.0\.0\.1:(\d+)\/[^"]+)"/);
      return {
        url: m[1],
        password: decodeURIComponent(m[2]),
        port: Number(m[3]),
        stop: () => child.kill('SIGTERM'),
      };
    },
    /** Run hoopctl as `client` through `gateway` (default: HAProxy). */
    cli(args, { client = CLIENTS.ci, gateway = url, timeoutMs = 60_000 } = {}) {
      return new Promise((res, rej) => {
        const child = spawn(process.execPath, [HOOPCTL, ...args], {
          env: cliEnv(client, gateway),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => {
          stdout += c.toString();
        });
        child.stderr.on('data', (c) => {
          stderr += c.toString();
        });
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          rej(new Error(`hoopctl ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
        }, timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          res({ code: code ?? -1, stdout, stderr });
        });
      });
    },
    /** What clients ran through the gateways, from the server log (log_statement=all), normalised. */
    executedStatements() {
      const log = readFileSync(pgLog).subarray(logStart).toString('utf8');
      const texts = [];
      for (const line of log.split('\n')) {
        const m = /^hoop_gateway\|LOG: {2}statement: (.*)$/.exec(line);
        // The gateway's own queries (catalog, a session's settings) are marked, and not a client's.
        if (m && !m[1].startsWith('/* hoop-gateway */')) texts.push(normaliseStatement(m[1]));
      }
      return texts;
    },
    stop() {
      haproxy.kill('SIGTERM');
      for (const g of gateways) if (g.process?.exitCode === null) g.process.kill('SIGKILL');
      idp.stop();
      pg.stop();
    },
  };
}

export const normaliseStatement = (text) => text.trim().replace(/;+$/, '').trim();

/** pgbench as a child process through a tunnel; resolves with its exit code and output. */
export function pgbench(tunnel, args) {
  return new Promise((res) => {
    const child = spawn('pgbench', [...args, tunnel.url], {
      env: { ...process.env, PGPASSWORD: tunnel.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (c) => {
      out += c.toString();
    });
    child.stderr.on('data', (c) => {
      out += c.toString();
    });
    child.once('exit', (code) => {
      children.delete(child);
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
      res({ code: code ?? -1, output: out, tps: tps ? Number(tps[1]) : undefined });
    });
  });
}
