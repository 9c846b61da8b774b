/**
 * The benchmark's real parts, started once: a throwaway PostgreSQL (fsync off, as the tests), pgbench
 * tables, the dev IdP, and hoop-gateway twice — over TLS (the product's path) and over plain loopback
 * HTTP (the gateway's own cost, without TLS) — each with `hoopctl connect` in CI mode in front; and
 * pgbouncer in session mode. Everything from dist/: run `npm run build` first.
 */

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { localGatewayConfig } from '../dist/gateway/dev/config.js';
import { SEED_SQL } from '../dist/gateway/dev/dev.js';
import { startDevIdp } from '../dist/gateway/dev/idp.js';
import { freePort } from '../dist/gateway/dev/ports.js';
import { startPostgres } from '../dist/gateway/dev/postgres.js';
import { ScramClient } from '../dist/src/shared/scram.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Every child a bench started: killed when the bench exits, however it exits. */
export const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Resolve with the first match of `pattern` in the child's output; reject on timeout or exit. */
export function waitForOutput(child, pattern, timeoutMs = 30_000) {
  return new Promise((res, rej) => {
    let seen = '';
    const timer = setTimeout(() => rej(new Error(`timed out waiting for ${pattern}:\n${seen}`)), timeoutMs);
    const on = (c) => {
      seen += c.toString();
      const m = pattern.exec(seen);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', on);
        child.stderr?.off('data', on);
        res(m);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited ${code} before ${pattern}:\n${seen}`));
    });
  });
}

const POLICIES = `
policies:
  - name: bench
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - name: all
        allow: [read, write, ddl, dcl, admin, copy-out, copy-in, session, transaction, procedural, utility]
        allow_side_channels: ['*']
`;

/**
 * HOOP_BENCH_PROFILE=dir: the gateways and their `hoopctl connect` write --cpu-prof profiles there.
 * HOOP_BENCH_NODE_ARGS="--trace-gc ...": more Node options for those processes; HOOP_BENCH_LOG=dir:
 * the gateways' output goes to files there.
 */
const profileArgs = () => [
  ...(process.env.HOOP_BENCH_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.HOOP_BENCH_PROFILE}`]
    : []),
  ...(process.env.HOOP_BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
];

/** Run a program without blocking the event loop (the dev IdP answers from this process). */
function runAsync(cmd, args, env) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.once('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

async function startGateway({ pg, dbPassword, tls, certs, dir }) {
  const port = await freePort();
  const nativePort = await freePort();
  const url = tls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  const idp = await startDevIdp({ audience: url });
  const config = join(dir, `gateway-${tls ? 'tls' : 'plain'}.yaml`);
  writeFileSync(
    config,
    localGatewayConfig({
      port,
      tls: tls ? certs : undefined,
      issuer: idp.issuer,
      audience: url,
      store: `  path: ./hoop-data-${tls ? 'tls' : 'plain'}`,
      dbPort: pg.port,
      password: { env: 'BENCH_DB_PASSWORD' },
      policies: POLICIES,
      // The native PostgreSQL listener: TLS on the TLS gateway, plain (loopback) on the other.
      listenExtra: `  postgres: 127.0.0.1:${nativePort}`,
    }),
  );
  const gateway = spawn(
    process.execPath,
    [...profileArgs(), join(ROOT, 'bin', 'hoop-gateway'), '--config', config],
    {
      env: { ...process.env, BENCH_DB_PASSWORD: dbPassword, HOOP_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(gateway);
  if (process.env.HOOP_BENCH_LOG) {
    const log = createWriteStream(join(process.env.HOOP_BENCH_LOG, `gateway-${tls ? 'tls' : 'plain'}.log`));
    gateway.stdout.pipe(log);
    gateway.stderr.pipe(log);
  }
  await waitForOutput(gateway, /hoop-gateway listening/);
  const home = mkdtempSync(join(tmpdir(), 'hoop-bench-home-'));
  const cliEnv = {
    ...process.env,
    HOOPCTL_HOME: home,
    HOOPCTL_GATEWAY: url,
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CLIENT_ID: 'ci-bot',
    HOOPCTL_CLIENT_SECRET: 'ci-bot-secret',
    NO_COLOR: '1',
    ...(tls ? { HOOPCTL_CA_FILE: certs.ca } : {}),
  };
  const connect = spawn(
    process.execPath,
    [...profileArgs(), join(ROOT, 'bin', 'hoopctl'), 'connect', 'prod-db'],
    {
      env: cliEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(connect);
  const m = await waitForOutput(connect, /psql "(postgresql:\/\/hoop:([^@]+)@127\.0\.0\.1:(\d+)\/[^"]+)"/);
  /** pgbench straight to the gateway's listen.postgres, the ci-bot's access token as the password. */
  const native = {
    pid: gateway.pid,
    port: nativePort,
    user: 'ci-bot',
    database: 'prod-db',
    password: '',
    ca: tls ? certs.ca : undefined,
    env: tls ? { PGSSLMODE: 'verify-full', PGSSLROOTCERT: certs.ca, PGHOSTADDR: '127.0.0.1' } : {},
    host: tls ? 'localhost' : '127.0.0.1',
    /** A fresh token before each use: they live 10 minutes. */
    async refresh() {
      this.password = (
        await runAsync(process.execPath, [join(ROOT, 'bin', 'hoopctl'), 'token'], cliEnv)
      ).trim();
    },
  };
  await native.refresh();
  return {
    pid: gateway.pid,
    connectPid: connect.pid,
    native,
    url: m[1],
    port: Number(m[3]),
    user: 'hoop',
    database: 'prod-db',
    password: decodeURIComponent(m[2]),
    stop: () => {
      connect.kill('SIGTERM');
      gateway.kill('SIGTERM');
      idp.stop();
    },
  };
}

export function makeCerts(dir) {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert, ca: cert };
}

async function startPgbouncer({ pg, dbPassword, dir }) {
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    `[databases]
shop = host=127.0.0.1 port=${pg.port} dbname=shop user=hoop_gateway password=${dbPassword}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = session
max_client_conn = 200
default_pool_size = 50
logfile = ${join(dir, 'pgbouncer.log')}
`,
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    chownSync(ini, uid, gid);
  }
  const [cmd, args] = asRoot ? ['runuser', ['-u', 'postgres', '--', 'pgbouncer', ini]] : ['pgbouncer', [ini]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((r) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, user: 'hoop_gateway', database: 'shop', password: '', stop: () => child.kill('SIGTERM') };
}

/**
 * pgpool-II 4.3 (Debian's pgpool2) in raw mode with `log_statement = on`: a C proxy that parses and
 * logs every statement, the nearest peer for "read and record every statement". Connection cache on,
 * no load balancing; cleartext password from the client (loopback), SCRAM to the server, so no
 * pool_passwd. As root it runs as postgres (pgpool refuses root). 4.3 names its socket directory
 * `socket_dir`; left unset it would try /var/run/postgresql.
 */
async function startPgpool({ pg, dbPassword, dir }) {
  const port = await freePort();
  const conf = join(dir, 'pgpool.conf');
  writeFileSync(
    conf,
    `backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = ${port}
socket_dir = '${dir}'
pcp_listen_addresses = ''
pcp_port = ${await freePort()}
pcp_socket_dir = '${dir}'
backend_hostname0 = '127.0.0.1'
backend_port0 = ${pg.port}
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'
enable_pool_hba = off
allow_clear_text_frontend_auth = on
num_init_children = 32
max_pool = 2
connection_cache = on
load_balance_mode = off
log_statement = on
log_per_node_statement = off
logging_collector = off
log_destination = 'stderr'
pid_file_name = '${join(dir, 'pgpool.pid')}'
logdir = '${dir}'
health_check_period = 0
sr_check_period = 0
failover_on_backend_error = off
`,
  );
  for (const f of ['pcp.conf', 'pool_passwd', 'pool_hba.conf']) writeFileSync(join(dir, f), '');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  const args = ['-n', '-f', conf, '-F', join(dir, 'pcp.conf'), '-a', join(dir, 'pool_hba.conf')];
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', 'pgpool', ...args]] : ['pgpool', args];
  // Its statement log goes to a file: on the terminal it would be the bench's bottleneck.
  const log = createWriteStream(join(dir, 'pgpool.log'));
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  children.add(child);
  for (let i = 0; i < 100; i++) {
    if (spawnSync('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port)]).status === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const pidFile = join(dir, 'pgpool.pid');
  return {
    port,
    user: 'hoop_gateway',
    database: 'shop',
    password: dbPassword,
    stop: () => {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').replace(/\0/g, '').trim()), 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
    },
  };
}

/** Start one of bench/lib's relay scripts and wait until it listens. */
async function startRelay(script, args, processes) {
  const relay = spawn(process.execPath, [join(ROOT, 'bench', 'lib', script), ...args.map(String)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(relay);
  processes.push(relay);
  await waitForOutput(relay, /listening on/);
}

const stopAll = (processes) => () => {
  for (const p of processes) p.kill('SIGTERM');
};

/**
 * Bare Node TCP relays chained in front of PostgreSQL (bench/lib/node-relay.mjs): two are the floor of
 * `hoopctl connect` + gateway, one the floor of the native listener.
 */
async function startNodeRelays(target, count = 2) {
  const processes = [];
  let port = target.port;
  for (let i = 0; i < count; i++) {
    const listen = await freePort();
    await startRelay('node-relay.mjs', [listen, port], processes);
    port = listen;
  }
  // relayPids: the floor's own CPU per transaction is reported beside the gateway's (bench/run.mjs).
  return { ...target, port, relayPids: processes.map((p) => p.pid), stop: stopAll(processes) };
}

/**
 * The same two bare Node relays, multiplexed: every client connection over one shared connection in
 * the middle (bench/lib/mux-relay.mjs). TPS only: the shared hop has no backpressure.
 */
async function startMuxRelays(target) {
  const processes = [];
  const back = await freePort();
  const front = await freePort();
  await startRelay('mux-relay.mjs', ['back', back, target.port], processes);
  await startRelay('mux-relay.mjs', ['front', front, back], processes);
  return { ...target, port: front, tpsOnly: true, stop: stopAll(processes) };
}

export async function startBench({ scale = 10, pgbouncer = true, pgpool = true } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-'));
  const pg = await startPostgres({ settings: { max_connections: '300' } });
  const dbPassword = `bench-${Math.random().toString(36).slice(2)}`;
  pg.psql(`\\set gw_password '${dbPassword}'\n${SEED_SQL}`);
  const direct = { port: pg.port, user: 'hoop_gateway', database: 'shop', password: dbPassword };
  const init = spawnSync('pgbench', ['-i', '-q', '-s', String(scale), ...connArgs(direct), 'shop'], {
    env: { ...process.env, PGPASSWORD: dbPassword },
    encoding: 'utf8',
  });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  const certs = makeCerts(dir);
  const plain = await startGateway({ pg, dbPassword, tls: false, certs, dir });
  const full = await startGateway({ pg, dbPassword, tls: true, certs, dir });
  const bouncerDir = mkdtempSync(join(tmpdir(), 'hoop-bench-bouncer-'));
  const bouncer = pgbouncer ? await startPgbouncer({ pg, dbPassword, dir: bouncerDir }) : undefined;
  // pgpool-II is optional: without Debian's pgpool2 its column is left out (apt-get install pgpool2).
  const hasPgpool = spawnSync('sh', ['-c', 'command -v pgpool']).status === 0;
  if (pgpool && !hasPgpool)
    process.stderr.write('bench: pgpool not installed, skipping the pgpool-II path\n');
  const pool =
    pgpool && hasPgpool
      ? await startPgpool({ pg, dbPassword, dir: mkdtempSync(join(tmpdir(), 'hoop-bench-pgpool-')) })
      : undefined;
  const relay = await startNodeRelays(direct, 1);
  const relays = await startNodeRelays(direct);
  const mux = await startMuxRelays(direct);
  return {
    pg,
    paths: {
      direct,
      pgbouncer: bouncer,
      'pgpool-II': pool,
      'node relay ×1': relay,
      'node relay ×2': relays,
      'node mux ×2': mux,
      native: plain.native,
      'native TLS': full.native,
      gateway: plain,
      full,
    },
    stop() {
      plain.stop();
      full.stop();
      bouncer?.stop();
      pool?.stop();
      relay.stop();
      relays.stop();
      mux.stop();
      pg.stop();
    },
  };
}

export const connArgs = (p) => ['-h', p.host ?? '127.0.0.1', '-p', String(p.port), '-U', p.user];

/** A minimal protocol client (so the client's own cost stays small): login, then raw exchanges. */
export async function rawConnect(p) {
  let socket = netConnect({ host: '127.0.0.1', port: p.port });
  socket.setNoDelay(true);
  await new Promise((r, j) => {
    socket.once('connect', r);
    socket.once('error', j);
  });
  if (p.ca) {
    // SSLRequest, 'S', then TLS verified against the bench's CA (the native listener over TLS).
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(80877103, 4);
    socket.write(request);
    const answer = await new Promise((r) => socket.once('data', r));
    if (answer[0] !== 0x53) throw new Error('the server refused TLS');
    socket = tlsConnect({ socket, ca: readFileSync(p.ca), servername: 'localhost' });
    await new Promise((r, j) => {
      socket.once('secureConnect', r);
      socket.once('error', j);
    });
  }
  const startup = (params) => {
    const body = Buffer.concat([
      Buffer.from([0, 3, 0, 0]),
      ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)),
      Buffer.from([0]),
    ]);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length + 4);
    return Buffer.concat([len, body]);
  };
  const typed = (type, body) => {
    const h = Buffer.alloc(5);
    h[0] = type.charCodeAt(0);
    h.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([h, body]);
  };
  let buf = Buffer.alloc(0);
  let scram;
  socket.write(startup({ user: p.user, database: p.database }));
  await new Promise((res, rej) => {
    const on = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'E') return rej(new Error(body.toString()));
        if (type === 'Z') {
          socket.off('data', on);
          return res();
        }
        if (type === 'R') {
          const code = body.readInt32BE(0);
          if (code === 10) {
            scram = new ScramClient(p.password);
            const first = Buffer.from(scram.first());
            const mech = Buffer.from('SCRAM-SHA-256\0');
            const l = Buffer.alloc(4);
            l.writeInt32BE(first.length);
            socket.write(typed('p', Buffer.concat([mech, l, first])));
          } else if (code === 11) {
            socket.write(typed('p', Buffer.from(scram.final(body.subarray(4).toString()))));
          } else if (code === 3) {
            socket.write(typed('p', Buffer.from(`${p.password}\0`)));
          }
        }
      }
    };
    socket.on('data', on);
  });
  return {
    socket,
    /** Send a simple Query; resolve with the bytes received until ReadyForQuery (not kept). */
    query(sql) {
      return new Promise((res) => {
        let bytes = 0;
        let tail = Buffer.alloc(0);
        const on = (chunk) => {
          bytes += chunk.length;
          // ReadyForQuery is the last 6 bytes of the answer: 'Z', int32 5, status.
          // (Only the last bytes are kept: copying each chunk would make the client the bottleneck.)
          tail = chunk.length >= 6 ? chunk.subarray(-6) : Buffer.concat([tail, chunk]).subarray(-6);
          if (tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5) {
            socket.off('data', on);
            res(bytes);
          }
        };
        socket.on('data', on);
        socket.write(typed('Q', Buffer.from(`${sql}\0`)));
      });
    },
    close() {
      socket.end(typed('X', Buffer.alloc(0)));
    },
  };
}

/** CPU time (user + system, every thread) a process has used so far, in seconds. */
export function cpuSeconds(pid) {
  // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export function statusKb(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const ARENA_ALIGN = 64 * 1024 * 1024; // glibc's per-thread malloc arenas are 64 MiB-aligned heaps

/**
 * Where a process's resident memory is (MB, from /proc/<pid>/smaps): file-backed pages (the node binary,
 * libraries), malloc (the main heap and glibc's per-thread arenas), and other anonymous memory (V8's
 * heap, WASM memory, stacks). Undefined when smaps cannot be read.
 */
export function memoryOf(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = { file: 0, malloc: 0, other: 0 };
  let kind = 'other';
  for (const line of text.split('\n')) {
    const mapping = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const [start, end] = [Number.parseInt(mapping[1], 16), Number.parseInt(mapping[2], 16)];
      const name = mapping[3];
      const arena = !name && start % ARENA_ALIGN === 0 && end - start <= ARENA_ALIGN;
      kind = name.startsWith('/') ? 'file' : name === '[heap]' || arena ? 'malloc' : 'other';
    } else if (line.startsWith('Rss:')) {
      kb[kind] += Number(line.split(/\s+/)[1]);
    }
  }
  return { file: kb.file / 1024, malloc: kb.malloc / 1024, other: kb.other / 1024 };
}

/** Reset a process's peak RSS (VmHWM) so the next stage's peak is its own (Linux, same user or root). */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not permitted: the peak then covers the whole run.
  }
}
