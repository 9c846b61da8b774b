/**
 * A throwaway PostgreSQL cluster on a free loopback port: the demo database of `hoop-gateway --dev`,
 * and the one integration tests and benchmarks start.
 * Real server binaries (pg_config --bindir, else /usr/lib/postgresql/<newest>/bin). Postgres refuses
 * to run as root, so as root the cluster is owned by and run as the `postgres` system user (runuser).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface PgServer {
  host: string;
  port: number;
  /** Superuser name and password (SCRAM over TCP). */
  user: string;
  password: string;
  dataDir: string;
  bindir: string;
  /** postgres://user:password@127.0.0.1:port/db */
  url(database?: string, user?: string, password?: string): string;
  /** Run SQL as the superuser through psql; returns stdout (unaligned, tuples only). */
  psql(sql: string, database?: string): string;
  stop(): void;
}

export interface PgOptions {
  /** Keep the cluster in this directory (created if missing, reused if it holds a cluster). Default: a temp dir removed on stop. */
  dir?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string>;
  /** Serve TLS with this certificate and key (PEM files). */
  tls?: { cert: string; key: string };
  /** pg_hba auth method for TCP connections. */
  authMethod?: 'scram-sha-256' | 'md5' | 'password' | 'trust';
}

export function findPgBindir(): string {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(join(dir, 'initdb'))) return dir;
  } catch {
    // pg_config is absent on Debian's server-only installs; fall through.
  }
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  throw new Error('PostgreSQL server binaries not found (install postgresql-15, or put pg_config on PATH)');
}

const isRoot = process.getuid?.() === 0;
const RUN_AS = 'postgres';

function runAsOwner(bin: string, args: string[], opts: { input?: string } = {}): string {
  const [cmd, argv] = isRoot ? ['runuser', ['-u', RUN_AS, '--', bin, ...args]] : [bin, args];
  const result = spawnSync(cmd, argv, { encoding: 'utf8', input: opts.input });
  if (result.error) throw new Error(`cannot run ${cmd}: ${result.error.message} (is it on PATH?)`);
  if (result.status !== 0) {
    throw new Error(`${bin} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

function ownerIds(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const uid = Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

const running = new Set<PgServer>();
process.on('exit', () => {
  for (const server of running) server.stop();
});

export async function startPostgres(options: PgOptions = {}): Promise<PgServer> {
  const bindir = findPgBindir();
  const persistent = options.dir !== undefined;
  const root = options.dir ?? mkdtempSync(join(tmpdir(), 'hoop-pg-'));
  mkdirSync(root, { recursive: true });
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'sock');
  const owner = ownerIds();
  const pwfile = join(root, 'pwfile');
  const reuse = persistent && existsSync(join(dataDir, 'PG_VERSION')) && existsSync(pwfile);
  const password = reuse ? readFileSync(pwfile, 'utf8').trim() : `pw-${randomBytes(12).toString('hex')}`;
  if (!reuse) writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  mkdirSync(socketDir, { recursive: true });
  if (owner) {
    for (const p of [root, socketDir, pwfile]) chownSync(p, owner.uid, owner.gid);
  }
  chmodSync(root, 0o700);

  const authMethod = options.authMethod ?? 'scram-sha-256';
  if (!reuse) {
    rmSync(dataDir, { recursive: true, force: true });
    runAsOwner(join(bindir, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--pwfile',
      pwfile,
      '--auth-local=trust',
      `--auth-host=${authMethod}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  }
  if (authMethod === 'md5' || authMethod === 'password') {
    // Stored verifiers follow password_encryption; md5 auth needs md5-hashed passwords.
    options.settings = {
      password_encryption: authMethod === 'md5' ? 'md5' : 'scram-sha-256',
      ...options.settings,
    };
  }

  const port = options.port ?? (await freePort());
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${socketDir}'`,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    shared_buffers: '128MB',
    ...options.settings,
  };
  if (options.tls) {
    for (const [name, file] of [
      ['server.crt', options.tls.cert],
      ['server.key', options.tls.key],
    ] as const) {
      execFileSync('cp', [file, join(dataDir, name)]);
      if (owner) chownSync(join(dataDir, name), owner.uid, owner.gid);
      chmodSync(join(dataDir, name), 0o600);
    }
    settings.ssl = 'on';
  }
  const conf = Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
  // Settings go in a file of their own, rewritten at every start, included once from postgresql.conf.
  const hoopConf = join(dataDir, 'hoop.conf');
  writeFileSync(hoopConf, `${conf}\n`);
  if (owner) chownSync(hoopConf, owner.uid, owner.gid);
  if (!reuse) {
    runAsOwner('/bin/sh', ['-c', `echo "include 'hoop.conf'" >> '${join(dataDir, 'postgresql.conf')}'`]);
  }

  runAsOwner(join(bindir, 'pg_ctl'), [
    '-D',
    dataDir,
    '-l',
    join(root, 'postgres.log'),
    '-w',
    '-t',
    '60',
    'start',
  ]);

  let stopped = false;
  const server: PgServer = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    dataDir,
    bindir,
    url: (database = 'postgres', user = 'postgres', pw = password) =>
      `postgres://${encodeURIComponent(user)}:${encodeURIComponent(pw)}@127.0.0.1:${port}/${database}`,
    psql: (sql, database = 'postgres') => {
      const result = spawnSync(
        'psql',
        [
          '-X',
          '-q',
          '-v',
          'ON_ERROR_STOP=1',
          '-At',
          '-h',
          socketDir,
          '-p',
          String(port),
          '-U',
          'postgres',
          '-d',
          database,
        ],
        { encoding: 'utf8', input: sql, env: { ...process.env, PGPASSWORD: password } },
      );
      if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
      return result.stdout;
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      running.delete(server);
      try {
        runAsOwner(join(bindir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // Already gone.
      }
      if (!persistent) rmSync(root, { recursive: true, force: true });
    },
  };
  running.add(server);
  return server;
}
