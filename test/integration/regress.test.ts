/**
 * PostgreSQL 15's own regression SQL, run with psql directly and through the gateway (allow-everything
 * policy), must print the same output. A subset in the order of PG 15's parallel_schedule (the files
 * depend on each other): test_setup, then the data-type groups. Each side starts from a fresh `shop`
 * database and runs as the same role (hoop_gateway, made superuser here as pg_regress's user is).
 *
 * Normalised: backend PIDs only: syntax errors, with their positions, are byte-identical. Files that differ on purpose are listed in EXPECTED_DIFFERENCES with the
 * reason; the test fails if any other file differs, or if one of those stops differing. The regression data
 * files and regress.so are not part of Debian's binary packages, so test_setup's COPYs and C
 * functions fail — identically on both sides, which is what this comparison is about.
 * Needs test/fixtures/fetch-pg-regress.sh to have run (.ci/run does it); skipped otherwise.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES, psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const SQL_DIR = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  '.cache',
  'pg-regress',
  'sql',
);

/** PG 15 parallel_schedule, first groups, in order. */
export const SCHEDULE = [
  ['test_setup'],
  [
    'boolean',
    'char',
    'name',
    'varchar',
    'text',
    'int2',
    'int4',
    'int8',
    'oid',
    'float4',
    'float8',
    'bit',
    'numeric',
  ],
  ['txid', 'uuid', 'enum', 'money', 'rangetypes', 'pg_lsn', 'regproc'],
  [
    'strings',
    'numerology',
    'point',
    'lseg',
    'line',
    'box',
    'path',
    'polygon',
    'circle',
    'date',
    'time',
    'timetz',
  ],
  ['timestamp', 'timestamptz', 'interval', 'inet', 'macaddr', 'macaddr8', 'multirangetypes'],
  ['geometry', 'horology', 'tstypes', 'regex', 'comments', 'expressions', 'unicode', 'xid', 'mvcc'],
  ['copyselect', 'copydml', 'insert', 'insert_conflict'],
].flat();

/**
 * Files whose output differs on purpose, and why. Everything else must match line for line.
 */
const EXPECTED_DIFFERENCES: Record<string, string> = {
  // `SET standard_conforming_strings = off` is refused: the gateway's parser reads SQL with standard
  // strings, and a session that changed how backslashes lex could hide text from it.
  strings: 'standard_conforming_strings = off is refused by design',
};

/**
 * Statements the gateway's parser cannot read are refused by it, answered as PostgreSQL answers a
 * syntax error (message, position): psql prints the same LINE/caret context, so only PIDs differ.
 */
function normaliseErrors(stderr: string): string {
  return stderr.replace(/PID \d+/g, 'PID n');
}

const present = existsSync(join(SQL_DIR, 'boolean.sql'));

describe.skipIf(!present)('PostgreSQL 15 regression SQL: direct vs through the gateway', () => {
  let stack: Stack;
  let tunnel: Tunnel;

  const freshDatabase = () => {
    stack.pg.psql(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'shop' and pid <> pg_backend_pid()",
    );
    stack.pg.psql('drop database if exists shop');
    stack.pg.psql('create database shop owner hoop_gateway');
    // Roles the files create are cluster-wide: drop what the previous side left.
    const roles = stack.pg
      .psql("select rolname from pg_roles where rolname like 'regress%'")
      .split('\n')
      .filter(Boolean);
    for (const role of roles) stack.pg.psql(`drop role if exists "${role}"`);
  };

  /** Each file's output (stdout, then stderr), by file name. */
  const runAll = (url: string) => {
    const out = new Map<string, string>();
    for (const name of SCHEDULE) {
      const r = psql(url, ['-a', '-q', '-v', 'ON_ERROR_STOP=0', '-f', join(SQL_DIR, `${name}.sql`)], {
        env: { PGTZ: 'America/Los_Angeles', PGDATESTYLE: 'Postgres, MDY', PG_ABS_SRCDIR: '/nonexistent' },
        timeoutMs: 120_000,
      });
      out.set(name, `exit ${r.status}\n${r.stdout}\n---- stderr\n${normaliseErrors(r.stderr)}`);
    }
    return out;
  };

  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES });
    stack.pg.psql('alter role hoop_gateway superuser');
    const alice = await stack.login('alice@example.com');
    tunnel = await stack.connect(alice);
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it(`gives the same output for ${SCHEDULE.length} files in schedule order`, () => {
    freshDatabase();
    const direct = runAll(`postgresql://hoop_gateway:${stack.dbPassword}@127.0.0.1:${stack.pg.port}/shop`);
    freshDatabase();
    const viaGateway = runAll(tunnel.url);
    expect(direct.get('insert_conflict')).toMatch(/^exit 0/);
    const differing: string[] = [];
    for (const name of SCHEDULE) {
      const a = direct.get(name)!.split('\n');
      const b = viaGateway.get(name)!.split('\n');
      const at = a.findIndex((line, i) => line !== b[i]);
      if (at < 0 && a.length === b.length) continue;
      differing.push(name);
      if (!(name in EXPECTED_DIFFERENCES)) {
        const context = (lines: string[]) => lines.slice(Math.max(0, at - 5), at + 10).join('\n');
        expect(`${name} line ${at} through the gateway:\n${context(b)}`).toBe(
          `${name} line ${at} direct:\n${context(a)}`,
        );
      }
    }
    expect(differing).toEqual(Object.keys(EXPECTED_DIFFERENCES));
  }, 300_000);
});
