/**
 * PostgreSQL 15's own regression suite, run with psql as pg_regress runs it, directly and through
 * the gateway (allow-everything policy), must print byte-identical output in every stable file,
 * syntax errors included (the gateway answers a statement its parser rejects exactly as PostgreSQL
 * does, so psql prints the same LINE/caret). The schedule is PG 15's parallel_schedule, read from the
 * source package (test/fixtures/fetch-pg-regress.sh; .ci/run runs it; skipped without it), run in
 * order, one file at a time: the two sides run at the same time on two clusters prepared alike.
 *
 * `npm test` runs the schedule up to CI_LAST (a representative prefix: setup, every data type, the
 * DDL and index groups); `npm run test:regress` (HOOP_REGRESS_FULL=1) runs all of it.
 *
 * Nothing is normalised. Files are left out of the comparison only when they are unstable (two direct
 * runs differ: UNSTABLE) or differ through the gateway by design (EXPECTED_DIFFERENCES); the test fails
 * if any other file differs, and if a listed difference disappears (so the list stays honest).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES } from '../harness/clients.js';
import {
  prepareRegressCluster,
  type RegressDirs,
  readSchedule,
  regressDirs,
  regressEnv,
  regressFixturesPresent,
  runRegressSchedule,
} from '../harness/pg-regress.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const FULL = process.env.HOOP_REGRESS_FULL === '1';
/** The last file `npm test` runs (the schedule's order is kept: later files need earlier ones). */
const CI_LAST = 'index_including_gist';

/**
 * Files whose output differs between two direct runs of the schedule, and why. Empty: two direct runs
 * on two fresh clusters gave identical output in all 217 files (no file prints a backend PID or an
 * OID in this harness, and each side has its cluster to itself, so nothing races another session).
 */
export const UNSTABLE: Record<string, string> = {};

/** Files whose output differs through the gateway on purpose, and why. */
export const EXPECTED_DIFFERENCES: Record<string, string> = {
  // `SET standard_conforming_strings = off` is refused: the gateway's parser lexes with standard
  // strings, and a session that changed how backslashes lex could hide text from it. The file's
  // later statements then run with standard strings.
  strings: 'SET standard_conforming_strings = off is refused by design',
  // psql's \lo_import, \lo_export and \lo_unlink call libpq's lo_* functions, which use the fast-path
  // FunctionCall message: refused, since policy can only judge a function called from SQL.
  largeobject: 'the fast-path FunctionCall message (psql \\lo_*) is refused by design',
};

/** Where two outputs first differ, with context, for the failure message. */
function firstDifference(name: string, direct: string, gateway: string): string {
  const a = direct.split('\n');
  const b = gateway.split('\n');
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  const context = (lines: string[]) => lines.slice(Math.max(0, at - 4), at + 8).join('\n');
  return `${name}.out line ${at + 1}\n--- direct\n${context(a)}\n--- through the gateway\n${context(b)}`;
}

const present = regressFixturesPresent();

describe.skipIf(!present)('PostgreSQL 15 regression suite: direct vs through the gateway', () => {
  const schedule = present ? readSchedule() : [];
  const files = FULL ? schedule : schedule.slice(0, schedule.indexOf(CI_LAST) + 1);
  let stack: Stack;
  let direct: PgServer;
  let tunnel: Tunnel;
  let dirs: RegressDirs;

  beforeAll(async () => {
    [stack, direct] = await Promise.all([startStack({ policies: ALLOW_ALL_POLICIES }), startPostgres()]);
    prepareRegressCluster(stack.pg, stack.dbPassword);
    prepareRegressCluster(direct, stack.dbPassword);
    dirs = regressDirs();
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
    direct?.stop();
    dirs?.remove();
  });

  it(`prints the same output for every stable file (${FULL ? 'the whole' : 'the start of the'} schedule)`, async () => {
    const directUrl = `postgresql://hoop_gateway:${stack.dbPassword}@127.0.0.1:${direct.port}/shop`;
    const [plain, gated] = await Promise.all([
      runRegressSchedule(directUrl, files, regressEnv(dirs, 'direct')),
      runRegressSchedule(tunnel.url, files, regressEnv(dirs, 'gateway')),
    ]);
    const keep = process.env.HOOP_REGRESS_KEEP;
    if (keep) {
      for (const name of files) {
        writeFileSync(join(keep, `${name}.direct.out`), plain.get(name)!);
        writeFileSync(join(keep, `${name}.gateway.out`), gated.get(name)!);
      }
    }
    const differing = files.filter((name) => plain.get(name) !== gated.get(name));
    const unexpected = differing.filter((name) => !(name in UNSTABLE) && !(name in EXPECTED_DIFFERENCES));
    expect(unexpected.map((name) => firstDifference(name, plain.get(name)!, gated.get(name)!))).toEqual([]);
    const listed = Object.keys(EXPECTED_DIFFERENCES).filter((name) => files.includes(name));
    expect(listed.filter((name) => !differing.includes(name))).toEqual([]);
    const identical = files.filter((name) => !differing.includes(name));
    console.log(
      `regress: ${files.length} files, ${identical.length} identical, differing: ${differing.join(' ')}`,
    );
  }, 1_800_000);
});
