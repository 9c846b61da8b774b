/**
 * The compatibility matrix: real clients through `hoopctl connect` (WebSocket/TLS → gateway →
 * PostgreSQL) — psql, pgbench in its three query modes, node-postgres, postgres.js, psycopg2,
 * psycopg 3 and pgjdbc — and a differential test: one psql script (rows, errors, notices, COPY)
 * run directly and through the gateway gives the same output.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES, psql } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const PYTHON = '/usr/bin/python3';
const JDBC_JAR = '/usr/share/java/postgresql.jar';

function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
    input,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe('client compatibility through hoopctl connect', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let work: string;

  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES });
    const alice = await stack.login('alice@example.com');
    tunnel = await stack.connect(alice);
    work = mkdtempSync(join(tmpdir(), 'hoop-clients-'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  const directUrl = () =>
    `postgresql://hoop_gateway:${stack.dbPassword}@127.0.0.1:${stack.pg.port}/shop?sslmode=disable`;

  it('psql: queries, \\copy in and out, variables, a transaction', () => {
    const r = psql(tunnel.url, ['-q', '-At', '-f', '-'], {
      input: [
        'create temp table t (id int, name text);',
        '\\copy t from stdin with (format csv)\n1,one\n2,"t,wo"\n\\.',
        'select count(*) from t \\gset',
        '\\echo rows=:count',
        'begin; insert into t values (3, $$three$$); rollback;',
        '\\copy (select * from t order by id) to stdout with (format csv)',
        "select 'ok' \\g",
      ].join('\n'),
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rows=2\n1,one\n2,"t,wo"\nok\n');
  });

  it.each(['simple', 'extended', 'prepared'])('pgbench -M %s', (mode) => {
    const env = { PGPASSWORD: tunnel.password };
    const conn = ['-h', '127.0.0.1', '-p', String(tunnel.port), '-U', 'hoop'];
    if (mode === 'simple') run('pgbench', ['-i', '-q', '-s', '1', ...conn, 'prod-db'], env);
    const r = run('pgbench', ['-M', mode, '-c', '2', '-t', '50', '-n', ...conn, 'prod-db'], env);
    expect(r.stdout).toMatch(/number of transactions actually processed: 100\/100/);
    expect(r.stdout).toMatch(/number of failed transactions: 0/);
  });

  it('node-postgres: simple, extended with parameters, named statements, binary results', async () => {
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      const simple = await client.query('select 1 as a; select 2 as b');
      expect((simple as unknown as pg.QueryResult[]).map((r) => r.rows[0])).toEqual([{ a: 1 }, { b: 2 }]);
      const params = await client.query('select $1::int + $2::int as sum, $3::text as t', [2, 3, null]);
      expect(params.rows).toEqual([{ sum: 5, t: null }]);
      for (let i = 0; i < 3; i++) {
        const named = await client.query({
          name: 'by-id',
          text: 'select name from customers where id = $1',
          values: [i + 1],
        });
        expect(named.rows).toHaveLength(1);
      }
      const binary = await client.query({
        text: "select 42::int4 as i, 'x'::text as t, 1.5::float8 as f, '\\x0102'::bytea as b",
        binary: true,
      } as pg.QueryConfig);
      expect(binary.rows[0].t).toBe('x');
      expect(binary.rows[0].b).toEqual(Buffer.from([1, 2]));
      const bad = await client.query('select 1/0').catch((e: Error & { code?: string }) => e.code);
      expect(bad).toBe('22012');
      expect((await client.query('select 3 as ok')).rows).toEqual([{ ok: 3 }]);
    } finally {
      await client.end();
    }
  });

  it('postgres.js: pipelined queries, prepared statements, cursors, COPY streams', async () => {
    const sql = postgres(tunnel.url, { max: 1, prepare: true, onnotice: () => {} });
    try {
      // Several queries at once on one connection: Parse/Describe/Flush pipelined by postgres.js.
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => sql`select ${i}::int as i, ${`v${i}`}::text as v`),
      );
      expect(results.map((r) => r[0]!.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      const tx = await sql.begin(async (t) => {
        await t`create temp table pj (id int)`;
        await t`insert into pj select generate_series(1, 100)`;
        return t`select count(*)::int as n from pj`;
      });
      expect(tx[0]!.n).toBe(100);
      let seen = 0;
      for await (const rows of sql`select x from generate_series(1, 1000) x`.cursor(100)) seen += rows.length;
      expect(seen).toBe(1000);
      const err = await sql`select 1/0`.catch((e: { code: string }) => e.code);
      expect(err).toBe('22012');
      const described = await sql`select ${1}::int as a`.describe();
      expect(described.columns.map((c: { name: string }) => c.name)).toEqual(['a']);
    } finally {
      await sql.end();
    }
  });

  it('psycopg2: parameters, server-side cursors, COPY, notices', () => {
    const script = `
import json, io, sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("select %s::int + 1, %s::text", (41, "hé"))
out = {"params": list(cur.fetchone())}
cur.execute("create temp table p2 (id int, v text)")
cur.copy_expert("copy p2 from stdin with (format csv)", io.StringIO("1,a\\n2,b\\n"))
buf = io.StringIO(); cur.copy_expert("copy p2 to stdout with (format csv)", buf); out["copy"] = buf.getvalue()
named = conn.cursor(name="big"); named.itersize = 50
named.execute("select x from generate_series(1, 500) x")
out["cursor"] = sum(1 for _ in named); named.close()
cur.execute("do $$ begin raise notice 'n1'; end $$")
out["notices"] = [n.strip() for n in conn.notices]
try:
    cur.execute("select 1/0")
except psycopg2.Error as e:
    out["error"] = e.pgcode
conn.rollback()
print(json.dumps(out))
`;
    const r = run(PYTHON, ['-c', script, tunnel.url]);
    expect(JSON.parse(r.stdout)).toEqual({
      params: [42, 'hé'],
      copy: '1,a\n2,b\n',
      cursor: 500,
      notices: ['NOTICE:  n1'],
      error: '22012',
    });
  });

  it('psycopg 3: binary results, prepare=True, pipeline mode, COPY', () => {
    const script = `
import json, sys, psycopg
out = {}
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    with conn.cursor(binary=True) as cur:
        cur.execute("select %s::int, %s::text, %s::bytea, 1.5::float8", (7, "x", b"\\x00\\x01"))
        r = cur.fetchone(); out["binary"] = [r[0], r[1], r[2].hex(), r[3]]
    for i in range(8):
        conn.execute("select name from customers where id = %s", (1 + i % 5,), prepare=True).fetchone()
    out["prepared"] = True
    with conn.pipeline() as p:
        curs = [conn.execute("select %s::int * 2", (i,)) for i in range(10)]
        p.sync()
        out["pipeline"] = [c.fetchone()[0] for c in curs]
    try:
        with conn.pipeline():
            conn.execute("select 1")
            conn.execute("select 1/0")
            conn.execute("select 2")
    except psycopg.errors.DivisionByZero:
        out["pipeline_error"] = "22012"
    out["after"] = conn.execute("select 'still ok'").fetchone()[0]
    conn.execute("create temp table p3 (id int, v text)")
    with conn.cursor().copy("copy p3 from stdin") as copy:
        for i in range(100): copy.write_row((i, f"v{i}"))
    with conn.cursor().copy("copy p3 to stdout (format binary)") as copy:
        copy.set_types(["int4", "text"])
        out["copy_binary"] = sum(1 for _ in copy.rows())
    cur = conn.cursor(name="srv")
    with conn.transaction():
        cur.execute("select generate_series(1, 300)"); out["named_cursor"] = len(cur.fetchall()); cur.close()
print(json.dumps(out))
`;
    const r = run(PYTHON, ['-c', script, tunnel.url]);
    expect(JSON.parse(r.stdout)).toEqual({
      binary: [7, 'x', '0001', 1.5],
      prepared: true,
      pipeline: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18],
      pipeline_error: '22012',
      after: 'still ok',
      copy_binary: 100,
      named_cursor: 300,
    });
  });

  it('pgjdbc with prepareThreshold=1: server-prepared statements reused, batches, binary transfer', () => {
    const source = `
import java.sql.*;
public class Probe {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0])) {
      StringBuilder out = new StringBuilder();
      try (PreparedStatement ps = c.prepareStatement("select name, id from customers where id = ?")) {
        for (int i = 1; i <= 5; i++) { ps.setInt(1, i); try (ResultSet rs = ps.executeQuery()) { rs.next(); out.append(rs.getInt(2)); } }
      }
      c.setAutoCommit(false);
      try (Statement s = c.createStatement()) { s.execute("create temp table j (id int, ts timestamptz, n numeric)"); }
      try (PreparedStatement ps = c.prepareStatement("insert into j values (?, now(), ?)")) {
        for (int i = 0; i < 50; i++) { ps.setInt(1, i); ps.setBigDecimal(2, new java.math.BigDecimal(i + ".5")); ps.addBatch(); }
        ps.executeBatch();
      }
      c.commit();
      try (PreparedStatement ps = c.prepareStatement("select count(*), sum(n) from j")) {
        for (int i = 0; i < 3; i++) try (ResultSet rs = ps.executeQuery()) { rs.next(); out.append(" ").append(rs.getInt(1)).append("/").append(rs.getBigDecimal(2)); }
      }
      try (Statement s = c.createStatement()) { s.setFetchSize(10); try (ResultSet rs = s.executeQuery("select x from generate_series(1,95) x")) { int n = 0; while (rs.next()) n++; out.append(" fetched=").append(n); } }
      c.commit();
      try (Statement s = c.createStatement()) { s.execute("select 1/0"); } catch (SQLException e) { out.append(" err=").append(e.getSQLState()); c.rollback(); }
      System.out.println(out);
    }
  }
}`;
    writeFileSync(join(work, 'Probe.java'), source);
    run('javac', ['-cp', JDBC_JAR, '-d', work, join(work, 'Probe.java')]);
    const jdbc = `jdbc:postgresql://127.0.0.1:${tunnel.port}/prod-db?user=hoop&password=${encodeURIComponent(tunnel.password)}&prepareThreshold=1&sslmode=disable&binaryTransfer=true`;
    const r = run('java', ['-cp', `${JDBC_JAR}:${work}`, 'Probe', jdbc]);
    expect(r.stdout.trim()).toBe('12345 50/1250.0 50/1250.0 50/1250.0 fetched=95 err=22012');
  });

  it('differential: one psql script gives the same output directly and through the gateway', () => {
    const script = [
      '\\set VERBOSITY default',
      'create temp table d (id int primary key, v text, n numeric, b bytea, j jsonb, ts timestamptz);',
      "insert into d values (1, 'one', 1.5, '\\x00ff', '{\"a\":[1,2]}', '2024-01-02 03:04:05+00'), (2, null, -2, '', 'null', 'infinity');",
      'select * from d order by id;',
      "select id, v from d where v like 'o%';",
      'insert into d values (1);',
      'select 1/0;',
      "select 'still here' as s;",
      'begin;',
      'insert into d values (3);',
      'select nonexistent;',
      'select 1;',
      'rollback;',
      "do $$ begin raise notice 'notice: %', 42; raise warning 'a warning'; end $$;",
      '\\copy d (id, v) from stdin',
      '10\tten',
      '11\t\\N',
      '\\.',
      '\\copy (select id, v from d order by id) to stdout with (format csv, header)',
      'copy d (id) from stdin;',
      'nope',
      '\\.',
      'select count(*), sum(id) from d;',
      'prepare q(int) as select v from d where id = $1; execute q(10); deallocate q;',
      'select x, x * 2 from generate_series(1, 5) x \\gset p_',
      '\\echo :p_x :p_',
      "select repeat('x', 10000) = repeat('x', 10000) as long_value;",
      "select e'tab\\tand\\nnewline' as escapes, '{1,2,3}'::int[] as arr, 'NaN'::float8 as nan;",
      'show standard_conforming_strings;',
      'set extra_float_digits = 3; select 0.1::float8 + 0.2::float8 as f;',
      'create temp view dv as select id from d; \\d dv',
      'listen chan; notify chan;',
    ].join('\n');
    const args = ['-v', 'ON_ERROR_STOP=0', '-a', '-f', '-'];
    const viaGateway = psql(tunnel.url, args, { input: script, env: { PGOPTIONS: '' } });
    const direct = psql(directUrl(), args, { input: script });
    const normalise = (s: string) => s.replace(/PID \d+/g, 'PID n').replace(/server process with PID n/g, '');
    // psql runs on (ON_ERROR_STOP is overridden below), so errors appear in stderr in order.
    expect(normalise(viaGateway.stdout)).toBe(normalise(direct.stdout));
    expect(normalise(viaGateway.stderr)).toBe(normalise(direct.stderr));
    expect(direct.stdout).toContain('still here');
    expect(direct.stderr).toContain('division by zero');
    expect(direct.stderr).toContain('NOTICE:  notice: 42');
  });
});
