/**
 * The differential property test of the relay's session model (issue 12): random seeded sequences of
 * SQL and protocol operations on named statements and portals — PREPARE/EXECUTE/DEALLOCATE/DISCARD,
 * DECLARE/FETCH/MOVE/CLOSE, Parse/Bind/Describe/Execute/Close/Sync, BEGIN/COMMIT/ROLLBACK/savepoints,
 * pipelined, with syntax errors, duplicate and unknown names and errors mid-transaction — run through
 * the gateway's real session path (test/harness/session-rig.ts) against a real PostgreSQL. After each
 * step:
 *   - the model's confirmed names equal the server's pg_prepared_statements and pg_cursors, queried on
 *     the same session through the gateway (with a statement and portal of the observer's own, which
 *     both sides leave out); the model is read through the rig (the one thing the gateway keeps private);
 * and after each sequence:
 *   - every Execute the server ran was judged by its real text: the audit record's text is what
 *     PostgreSQL logged (log_statement = all), and an SQL EXECUTE's record names what it ran.
 * HOOP_MODEL_RUNS sets the number of sequences (bench/session-model.mjs runs thousands).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.js';
import { type RawMessage, RawPg } from '../harness/raw-pg.js';
import { type SessionRig, startSessionRig } from '../harness/session-rig.js';

const RUNS = Number(process.env.HOOP_MODEL_RUNS ?? 100);
const SEED = Number(process.env.HOOP_MODEL_SEED ?? 20240611);

const OBS_STATEMENT = 'hoop_obs';
const OBS_PORTAL = 'hoop_obs_p';
const OBSERVE_SQL =
  "select 'S' as k, name::text, statement from pg_prepared_statements union all select 'P', name::text, statement from pg_cursors";

const { parse, bind, execute, describe: describeMsg, close, sync, query } = serialize;

// ---- the operations --------------------------------------------------------------------------------

const stmtName = fc.constantFrom('s1', 's2', 'S3');
const protoStmtName = fc.constantFrom('s1', 's2', 'S3', '');
const cursorName = fc.constantFrom('c1', 'c2');
const protoPortalName = fc.constantFrom('c1', 'c2', '');
const preparable = fc.constantFrom(
  'select 1 as one',
  'select x from generate_series(1, 3) x',
  'select * from t',
  'insert into t values (7)',
  'delete from t where id < 0',
  'select 1/0',
  'selec 1',
);
const cursorQuery = fc.constantFrom('select x from generate_series(1, 5) x', 'select * from t', 'select 1/0');

/** One SQL statement (text without the trailing semicolon). */
const sqlStatement = fc.oneof(
  fc.tuple(stmtName, preparable).map(([n, q]) => `prepare ${n} as ${q}`),
  fc
    .tuple(stmtName, fc.constantFrom('all', ''))
    .map(([n, all]) => (all ? 'deallocate all' : `deallocate ${n}`)),
  fc.constant('discard all'),
  fc
    .tuple(cursorName, fc.boolean(), cursorQuery)
    .map(([c, hold, q]) => `declare ${c} cursor ${hold ? 'with hold ' : ''}for ${q}`),
  fc
    .tuple(cursorName, fc.constantFrom('fetch 1 from', 'move 1 in', 'fetch all from'))
    .map(([c, f]) => `${f} ${c}`),
  fc.tuple(cursorName, fc.boolean()).map(([c, all]) => (all ? 'close all' : `close ${c}`)),
  fc.constantFrom('begin', 'commit', 'rollback', 'savepoint sp', 'release sp', 'rollback to sp'),
  fc.constantFrom('select 1/0', 'selec 2', 'select 3'),
);

type Op = { kind: 'query'; sql: string } | { kind: 'proto'; messages: ProtoMsg[] };
type ProtoMsg =
  | { m: 'parse'; name: string; text: string }
  | { m: 'bind'; portal: string; statement: string }
  | { m: 'execute'; portal: string; rows: number }
  | { m: 'describe'; type: 'S' | 'P'; name: string }
  | { m: 'close'; type: 'S' | 'P'; name: string }
  | { m: 'sync' }
  | { m: 'query'; sql: string };

const protoMsg: fc.Arbitrary<ProtoMsg> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(protoStmtName, fc.oneof(preparable, sqlStatement))
      .map(([name, text]) => ({ m: 'parse' as const, name, text })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(protoPortalName, protoStmtName)
      .map(([portal, statement]) => ({ m: 'bind' as const, portal, statement })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.oneof(protoPortalName, cursorName), fc.constantFrom(0, 1))
      .map(([portal, rows]) => ({ m: 'execute' as const, portal, rows })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('S' as const, 'P' as const), fc.oneof(protoStmtName, cursorName))
      .map(([type, name]) => ({ m: 'describe' as const, type, name })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('S' as const, 'P' as const), fc.oneof(protoStmtName, cursorName))
      .map(([type, name]) => ({ m: 'close' as const, type, name })),
  },
  { weight: 1, arbitrary: fc.constant({ m: 'sync' as const }) },
  { weight: 1, arbitrary: sqlStatement.map((sql) => ({ m: 'query' as const, sql })) },
);

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .array(sqlStatement, { minLength: 1, maxLength: 3 })
      .map((s) => ({ kind: 'query' as const, sql: s.join('; ') })),
  },
  // An SQL EXECUTE alone in its Query, so the server's log names what it ran (its DETAIL).
  { weight: 2, arbitrary: stmtName.map((n) => ({ kind: 'query' as const, sql: `execute ${n}` })) },
  {
    weight: 4,
    arbitrary: fc
      .array(protoMsg, { minLength: 1, maxLength: 6 })
      .map((messages) => ({ kind: 'proto' as const, messages: syncBeforeQueries(messages) })),
  },
);

/**
 * A Query inside a pipeline comes right after a Sync (or first): after an error Postgres ignores every
 * message up to Sync, a Query too, and the test counts the ReadyForQuery messages it waits for.
 */
function syncBeforeQueries(messages: ProtoMsg[]): ProtoMsg[] {
  const out: ProtoMsg[] = [];
  for (const m of messages) {
    if (m.m === 'query' && out.length > 0 && out.at(-1)!.m !== 'sync') out.push({ m: 'sync' });
    out.push(m);
  }
  return out;
}

function encode(o: Op): { bytes: Buffer; readies: number } {
  if (o.kind === 'query') return { bytes: query(o.sql), readies: 1 };
  const parts: Buffer[] = [];
  let readies = 0;
  for (const m of o.messages) {
    switch (m.m) {
      case 'parse':
        parts.push(parse({ name: m.name, text: m.text }));
        break;
      case 'bind':
        parts.push(bind({ portal: m.portal, statement: m.statement }));
        break;
      case 'execute':
        parts.push(execute({ portal: m.portal, rows: m.rows }));
        break;
      case 'describe':
        parts.push(describeMsg({ type: m.type, name: m.name }));
        break;
      case 'close':
        parts.push(close({ type: m.type, name: m.name }));
        break;
      case 'sync':
        parts.push(sync());
        readies++;
        break;
      case 'query':
        parts.push(query(m.sql));
        readies++;
        break;
    }
  }
  parts.push(sync());
  return { bytes: Buffer.concat(parts), readies: readies + 1 };
}

// ---- the comparison -----------------------------------------------------------------------------------

/** Exchange and wait for `readies` ReadyForQuery messages. */
async function run(c: RawPg, bytes: Buffer, readies: number): Promise<RawMessage[]> {
  return c.exchange(bytes, readies);
}

async function serverNames(
  c: RawPg,
): Promise<{ statements: Map<string, string>; portals: Map<string, string> } | undefined> {
  const out = await run(
    c,
    Buffer.concat([
      close({ type: 'S', name: OBS_STATEMENT }),
      parse({ name: OBS_STATEMENT, text: OBSERVE_SQL }),
      bind({ portal: OBS_PORTAL, statement: OBS_STATEMENT }),
      execute({ portal: OBS_PORTAL }),
      close({ type: 'P', name: OBS_PORTAL }),
      close({ type: 'S', name: OBS_STATEMENT }),
      sync(),
    ]),
    1,
  );
  if (out.some((m) => m.type === 'E')) return undefined;
  const statements = new Map<string, string>();
  const portals = new Map<string, string>();
  for (const m of out.filter((x) => x.type === 'D')) {
    const values = decodeRow(m.body);
    const [k, name, text] = values;
    if (name === OBS_STATEMENT || name === OBS_PORTAL) continue;
    (k === 'S' ? statements : portals).set(name!, text ?? '');
  }
  return { statements, portals };
}

function decodeRow(body: Buffer): (string | null)[] {
  const n = body.readInt16BE(0);
  const out: (string | null)[] = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(at);
    at += 4;
    if (len < 0) out.push(null);
    else {
      out.push(body.toString('utf8', at, at + len));
      at += len;
    }
  }
  return out;
}

const clean = (text: string) => text.trim().replace(/;$/, '').trim();

describe('the session model equals the server, step by step', () => {
  let pg: PgServer;
  let rig: SessionRig;
  let logFile: string;
  let logOffset = 0;

  beforeAll(async () => {
    pg = await startPostgres({ settings: { log_statement: "'all'", log_line_prefix: "'%p '" } });
    pg.psql('create table t (id int)');
    rig = await startSessionRig(pg);
    logFile = join(dirname(pg.dataDir), 'postgres.log');
  });
  afterAll(async () => {
    await rig?.close();
    pg?.stop();
  });

  it(
    `${RUNS} random sequences of SQL and protocol operations`,
    async () => {
      let steps = 0;
      let compared = 0;
      let executes = 0;
      let sequences = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
          if (++sequences % 250 === 0) console.log(`session model: ${sequences} sequences passed so far`);
          const c = await RawPg.connect({ port: rig.port, user: 'hoop', database: 'prod-db' });
          const recordsBefore = rig.records.length;
          try {
            const pidRows = await run(c, query('select pg_backend_pid()'), 1);
            const pid = decodeRow(pidRows.find((m) => m.type === 'D')!.body)[0]!;
            const relay = rig.registry.all().at(-1)!.relay;
            for (const o of ops) {
              const { bytes, readies } = encode(o);
              await run(c, bytes, readies);
              steps++;
              // PostgreSQL itself may end the session (EXECUTE of a protocol-prepared ROLLBACK TO outside a
              // block is a FATAL XX000 in PostgreSQL 15): nothing more to compare on it.
              if (c.closed) break;
              if (relay.core.transactionStatus === 'E') continue;
              const server = await serverNames(c);
              if (!server) continue;
              compared++;
              const model = relay.core.model.snapshot();
              const modelStatements = new Map(
                [...model.statements].filter(([n]) => n !== '' && n !== OBS_STATEMENT),
              );
              const modelPortals = new Map([...model.portals].filter(([n]) => n !== OBS_PORTAL));
              const context = `after ${JSON.stringify(o)}`;
              expect([...modelStatements.keys()].sort(), context).toEqual(
                [...server.statements.keys()].sort(),
              );
              expect([...modelPortals.keys()].sort(), context).toEqual([...server.portals.keys()].sort());
              for (const [name, def] of modelStatements)
                expect(server.statements.get(name), context).toContain(clean(def.text));
              for (const [name, def] of modelPortals)
                expect(server.portals.get(name), context).toContain(clean(def.text));
            }
            c.close();
            await c.until(() => c.closed, 5000).catch(() => undefined);
            executes += await checkRealTexts(pid, recordsBefore);
          } finally {
            c.close();
          }
        }),
        {
          numRuns: RUNS,
          seed: SEED,
          endOnFailure: true,
          ...(process.env.HOOP_MODEL_PATH ? { path: process.env.HOOP_MODEL_PATH } : {}),
        },
      );
      console.log(
        `session model: ${RUNS} sequences, ${steps} steps, ${compared} comparisons, ${executes} executions checked against the server's log`,
      );
    },
    Math.max(900_000, RUNS * 3000),
  );

  /** Every Execute and SQL EXECUTE the server logged was recorded with that text, in order. */
  async function checkRealTexts(pid: string, from: number): Promise<number> {
    const recorded = executedRecords(rig.records.slice(from));
    let logged: { kind: 'execute' | 'sql-execute'; text: string | undefined }[] = [];
    for (let i = 0; i < 50; i++) {
      logged = loggedExecutions(readLog(), pid);
      if (logged.length >= recorded.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    logOffset = statSync(logFile).size;
    expect(
      logged.map((l) => l.kind),
      JSON.stringify({ logged, recorded }, null, 1),
    ).toEqual(recorded.map((r) => r.kind));
    logged.forEach((l, i) => {
      const r = recorded[i]!;
      if (r.text === undefined) expect(l.text, `EXECUTE #${i}`).toBeUndefined();
      else expect(l.text, `execution #${i}`).toContain(clean(r.text));
    });
    return logged.length;
  }

  function readLog(): string {
    return readFileSync(logFile, 'utf8').slice(logOffset);
  }
});

/** From the audit records: what each executed (not skipped, not refused) extended Execute or SQL EXECUTE ran. */
function executedRecords(records: { type: string; data: unknown }[]) {
  const skipped = new Set<string>();
  const portalMissing = new Set<string>();
  for (const r of records) {
    const d = r.data as { statement_id?: string; skipped?: boolean; sqlstate?: string; error?: string };
    if (r.type !== 'statement.result') continue;
    if (d.skipped) skipped.add(d.statement_id!);
    // An Execute of a portal that turned out not to exist (a Bind still in flight failed): the server
    // refused it before logging it. (An SQL statement failing with 34000 was logged first.)
    if (d.sqlstate === '34000' && /^portal ".*" does not exist$/.test(d.error ?? ''))
      portalMissing.add(d.statement_id!);
  }
  const out: { kind: 'execute' | 'sql-execute'; text: string | undefined }[] = [];
  for (const r of records) {
    if (r.type !== 'statement') continue;
    const d = r.data as {
      statement_id: string;
      decision: string;
      protocol: string;
      kind: string;
      text: string;
      runs?: string;
    };
    if (d.decision !== 'allow' || skipped.has(d.statement_id)) continue;
    if (d.protocol === 'extended') {
      if (!portalMissing.has(d.statement_id)) out.push({ kind: 'execute', text: d.text });
    } else if (d.kind === 'ExecuteStmt') out.push({ kind: 'sql-execute', text: d.runs });
  }
  return out;
}

/** From the server's log (one backend): `execute <name>: <text>`, and SQL EXECUTE with its `prepare:` detail. */
function loggedExecutions(log: string, pid: string) {
  const lines = log.split('\n').filter((l) => l.startsWith(`${pid} `));
  const out: { kind: 'execute' | 'sql-execute'; text: string | undefined }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.slice(pid.length + 1);
    const ext = /^LOG: {2}execute [^:]*: (.*)$/.exec(line);
    if (ext) {
      // An Execute of the unnamed portal a failed simple Query left in an aborted block (invisible,
      // it can only fail, and ROLLBACK drops it) is logged with empty text: nothing ran.
      if (ext[1] !== '') out.push({ kind: 'execute', text: ext[1] });
      continue;
    }
    const simple = /^LOG: {2}statement: (execute .*)$/i.exec(line);
    if (simple) {
      const detail = /^DETAIL: {2}prepare: (.*)$/.exec(lines[i + 1]?.slice(pid.length + 1) ?? '');
      out.push({ kind: 'sql-execute', text: detail?.[1] });
    }
  }
  return out;
}
