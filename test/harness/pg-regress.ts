/**
 * PostgreSQL 15's regression suite as pg_regress runs it, for comparing psql's output direct and
 * through the gateway: the schedule read from the source package's parallel_schedule, a database
 * prepared as pg_regress prepares one, psql run as pg_regress runs it (`psql -X -a -q`, the file on
 * stdin, stdout and stderr into one file) with pg_regress's environment.
 * The fixtures come from test/fixtures/fetch-pg-regress.sh (.ci/run runs it).
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEED_SQL } from '../../gateway/dev/dev.js';
import type { PgServer } from './postgres.js';

export const REGRESS_CACHE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  '.cache',
  'pg-regress',
);

export function regressFixturesPresent(): boolean {
  return (
    existsSync(join(REGRESS_CACHE, 'parallel_schedule')) &&
    existsSync(join(REGRESS_CACHE, 'sql', 'test_setup.sql')) &&
    existsSync(join(REGRESS_CACHE, 'data', 'tenk.data'))
  );
}

/** The test files of parallel_schedule in order (`test:` lines; `ignore:` only marks a file ignorable). */
export function readSchedule(): string[] {
  const text = readFileSync(join(REGRESS_CACHE, 'parallel_schedule'), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.startsWith('test:'))
    .flatMap((line) => line.slice('test:'.length).trim().split(/\s+/));
}

/** Where one run's files live: the data files the SQL loads, and a results/ directory per side. */
export interface RegressDirs {
  /** PG_ABS_SRCDIR: holds data/ (read by the server's COPY FROM), shared by both sides. */
  srcdir: string;
  /** A PG_ABS_BUILDDIR per side: the server writes results/*.csv there and reads them back. */
  builddir(side: string): string;
  remove(): void;
}

/** A world-readable copy of the data files (the server runs as `postgres` and cannot read a 0700 home). */
export function regressDirs(): RegressDirs {
  const root = mkdtempSync(join(tmpdir(), 'hoop-regress-'));
  chmodSync(root, 0o755);
  cpSync(join(REGRESS_CACHE, 'data'), join(root, 'data'), { recursive: true });
  return {
    srcdir: root,
    builddir(side) {
      const dir = join(root, side);
      mkdirSync(join(dir, 'results'), { recursive: true });
      chmodSync(dir, 0o755);
      chmodSync(join(dir, 'results'), 0o777);
      return dir;
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * pg_regress's environment for psql (pg_regress.c: initialize_environment): English messages, its
 * time zone and date style, and the paths the SQL reads with \getenv. Its interval style (PGOPTIONS, which
 * the gateway does not forward) is a setting of the database instead: createRegressDatabase. PG_LIBDIR points at a
 * directory without regress.so (Debian's binary packages lack it), so its C functions fail to load.
 */
export function regressEnv(dirs: RegressDirs, side: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('PG') && key !== 'LANGUAGE' && key !== 'LC_ALL') {
      env[key] = value;
    }
  }
  return {
    ...env,
    LC_MESSAGES: 'C',
    PGTZ: 'America/Los_Angeles',
    PGDATESTYLE: 'Postgres, MDY',
    PGCONNECT_TIMEOUT: '20',
    PG_ABS_SRCDIR: dirs.srcdir,
    PG_ABS_BUILDDIR: dirs.builddir(side),
    PG_LIBDIR: dirs.srcdir,
    PG_DLSUFFIX: '.so',
  };
}

/**
 * A fresh database `name` owned by `owner`, as pg_regress creates its `regression` database
 * (template0, C messages/monetary/numeric/time, hex bytea, default time zone abbreviations).
 */
export function createRegressDatabase(pg: PgServer, name: string, owner: string): void {
  pg.psql(
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}' and pid <> pg_backend_pid()`,
  );
  pg.psql(`drop database if exists "${name}"`);
  pg.psql(`create database "${name}" owner "${owner}" template template0`);
  const settings = [
    "lc_messages TO 'C'",
    "lc_monetary TO 'C'",
    "lc_numeric TO 'C'",
    "lc_time TO 'C'",
    "bytea_output TO 'hex'",
    "timezone_abbreviations TO 'Default'",
    "intervalstyle TO 'postgres_verbose'",
  ];
  for (const setting of settings) pg.psql(`alter database "${name}" set ${setting}`);
}

/** One file through `psql -X -a -q` as pg_regress runs it: its output, stdout and stderr interleaved. */
export function runRegressFile(
  url: string,
  name: string,
  env: Record<string, string>,
  outDir: string,
  timeoutMs: number,
): Promise<string> {
  const outFile = join(outDir, `${name}.out`);
  const input = openSync(join(REGRESS_CACHE, 'sql', `${name}.sql`), 'r');
  const output = openSync(outFile, 'w');
  return new Promise<string>((resolvePromise, reject) => {
    const child = spawn('psql', ['-X', '-a', '-q', '-d', url], {
      stdio: [input, output, output],
      env,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const text = readFileSync(outFile, 'utf8');
      resolvePromise(signal ? `${text}\n[psql killed by ${signal} after ${timeoutMs} ms]\n` : text);
      void code;
    });
  }).finally(() => {
    closeSync(input);
    closeSync(output);
  });
}

/** Every file in order against `url`; each file's output by name. */
export async function runRegressSchedule(
  url: string,
  files: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<Map<string, string>> {
  const outDir = join(env.PG_ABS_BUILDDIR!, 'out');
  mkdirSync(outDir, { recursive: true });
  const outputs = new Map<string, string>();
  for (const name of files) outputs.set(name, await runRegressFile(url, name, env, outDir, timeoutMs));
  return outputs;
}

/**
 * A cluster as the stack's: the demo seed (role hoop_gateway with `password`), unless it has it,
 * then hoop_gateway a superuser (as pg_regress's user is) and `shop` a fresh regression database.
 */
export function prepareRegressCluster(pg: PgServer, password: string): void {
  if (!pg.psql("select 1 from pg_roles where rolname = 'hoop_gateway'").trim()) {
    pg.psql(`\\set gw_password '${password}'\n${SEED_SQL}`);
  }
  pg.psql('alter role hoop_gateway superuser');
  createRegressDatabase(pg, 'shop', 'hoop_gateway');
}
