/**
 * Masking end to end, with real clients through a real gateway to a real PostgreSQL: psql (text),
 * node-postgres (text and binary results), psycopg 3 (binary), pgjdbc (binary transfer). For an
 * identity with masking rules no route returns a clear value of a masked column — aliases,
 * expressions, whole rows, subqueries, CTEs, UNION, views, cursors, RETURNING, COPY, error echoes —
 * while unmasked columns are byte-identical to what Postgres returns directly.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDataRow } from '../../gateway/pgwire/backend.js';
import { RawPg } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const PYTHON = '/usr/bin/python3';
const JDBC_JAR = '/usr/share/java/postgresql.jar';

/** Every clear sensitive value of the demo data: none may ever come back to alice. */
const SSNS = ['000-12-3456', '000-98-7654', '000-45-6789', '000-11-2222', '000-33-4444'];
const PANS = [
  '4111111111111111',
  '5555555555554444',
  '378282246310005',
  '6011111111111117',
  '4012888888881881',
];
const EMAILS = [
  'ada@example.com',
  'brian@example.org',
  'chloe@example.net',
  'dev@example.com',
  'eve@example.org',
];
const LOCALS = ['ada@', 'brian@', 'chloe@', 'dev@', 'eve@'];
const CLEAR = [...SSNS, ...PANS, ...EMAILS, ...SSNS.map((s) => s.replace(/-/g, ''))];

function expectNoClearValue(text: string): void {
  for (const value of [...CLEAR, ...LOCALS]) expect(text, `clear value ${value} leaked`).not.toContain(value);
}

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: everything, allow: [read, write, ddl, transaction, session, copy-out, copy-in, utility] }
    masking:
      - { name: pan-partial, columns: [public.customers.card_pan], mask: partial }
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
      - { name: email-domain, columns: [public.customers.email], mask: email-domain }
      - { name: detectors, tags: [pan, ssn, secret], mask: redact }
  - name: auditors
    groups: [audit]
    connections: [prod-db]
    audit: true
    inference_guard: true
    masking_fallback: deny
    rules:
      - { name: reads, allow: [read, transaction, session] }
    masking:
      - { name: ssn-token, columns: ["customers.ssn"], mask: token }
      - { name: pan-redact, columns: [public.customers.card_pan], mask: redact }
      - { name: email-null, columns: [public.customers.email], mask: "null" }
`;

function psql(url: string, sql: string) {
  return spawnSync('psql', ['-X', '-At', '-F', '|', url, '-c', sql], { encoding: 'utf8', timeout: 30_000 });
}

function psqlScript(url: string, script: string) {
  return spawnSync('psql', ['-X', '-At', '-F', '|', url], {
    input: script,
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('masking through the gateway', () => {
  let stack: Stack;
  let alice: Tunnel;
  let aubrey: Tunnel;
  let aubreyHome: string;
  let work: string;
  /** Everything any client received, swept for clear values at the end. */
  const seen: string[] = [];
  const direct = (sql: string) => stack.pg.psql(sql, 'shop');

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    work = mkdtempSync(join(tmpdir(), 'hoop-masking-'));
    // A view, a view over the view, a table with free text for the detectors: made as the owner.
    direct(`SET ROLE hoop_gateway;
      CREATE VIEW public.customer_cards AS SELECT name AS holder, card_pan AS pan, lower(email) AS contact FROM public.customers;
      CREATE VIEW public.card_tails AS SELECT holder, right(pan, 4) AS tail FROM public.customer_cards;
      CREATE TABLE public.notes (id int, body text);
      INSERT INTO public.notes VALUES (1, 'customer paid with 4111 1111 1111 1111 yesterday'), (2, 'nothing sensitive here');`);
    alice = await stack.connect(await stack.login('alice@example.com'));
    aubreyHome = await stack.login('aubrey@example.com');
    aubrey = await stack.connect(aubreyHome);
  }, 180_000);

  afterAll(async () => {
    alice?.stop();
    aubrey?.stop();
    await stack?.stop();
  });

  const run = (sql: string) => {
    const r = psql(alice.url, sql);
    seen.push(r.stdout, r.stderr);
    return r;
  };

  it('masks columns by rule and leaves the others byte-identical to direct', () => {
    const r = run('select id, name, email, ssn, card_pan, country from customers order by id');
    expect(r.stderr).toBe('');
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    expect(rows[0]).toEqual([
      '1',
      'Ada Example',
      '****@example.com',
      '*******3456',
      '411111******1111',
      'GB',
    ]);
    expect(rows[2]![4]).toBe('378282*****0005');
    const clear = direct('select id, name, country from customers order by id').trim().split('\n');
    expect(rows.map((r) => [r[0], r[1], r[5]].join('|'))).toEqual(clear);
  });

  it('follows aliases, expressions and functions; derived values are redacted', () => {
    const r = run(
      "select ssn as x, lower(ssn), ssn || '', substring(card_pan from 1 for 16), upper(email), coalesce(ssn, name), case when ssn like '000%' then ssn end from customers where id = 1",
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('*******3456|****|****|****|****|****|****');
  });

  it('masks whole-row references: c, c.*, row_to_json, to_jsonb, array_agg, string_agg, format', () => {
    const r = run(
      "select c::text, row_to_json(c), to_jsonb(c), array_agg(c.ssn) over (), string_agg(card_pan, ',') over (), format('%s', c.email) from customers c where id = 2",
    );
    expect(r.stderr).toBe('');
    const [whole, json, jsonb, arr, agg, fmt] = r.stdout.trim().split('|');
    expect(whole).toBe('****');
    expect(json).toBe('"****"');
    expect(jsonb).toBe('"****"');
    expect(arr).toBe(''); // an array cannot hold "****": NULL
    expect(agg).toBe('****');
    expect(fmt).toBe('****');
    const star = run('select c.* from customers c where id = 2');
    expect(star.stdout.trim()).toBe('2|Brian Sample|****@example.org|*******7654|555555******4444|US');
  });

  it('masks through subqueries, CTEs, UNION, views and views over views', () => {
    const sub = run('select s from (select ssn as s from customers where id = 3) t');
    expect(sub.stdout.trim()).toBe('*******6789');
    const cte = run('with t(p) as (select card_pan from customers) select p from t order by 1 limit 1');
    expect(cte.stdout.trim()).toMatch(/^\d{6}\*+\d{4}$/);
    const union = run(
      'select name from customers where id = 1 union all select ssn from customers where id = 1',
    );
    expect(union.stdout.trim().split('\n')).toEqual(['*******mple', '*******3456']);
    const scalar = run('select (select email from customers where id = 4)');
    expect(scalar.stdout.trim()).toBe('****@example.com');
    const view = run('select holder, pan, contact from customer_cards order by holder limit 1');
    expect(view.stdout.trim()).toBe('Ada Example|411111******1111|****');
    const nested = run('select holder, tail from card_tails order by holder limit 1');
    expect(nested.stdout.trim()).toBe('Ada Example|****');
  });

  it('masks RETURNING of DML', () => {
    const r = run(
      'update customers set country = country where id = 5 returning id, ssn, email, card_pan, country',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')[0]).toBe('5|*******4444|****@example.org|401288******1881|DE');
  });

  it('masks cursors: DECLARE then FETCH on the same session, text and binary', () => {
    const r = psqlScript(
      alice.url,
      'begin;\ndeclare c cursor for select name, ssn from customers order by id;\nfetch 2 from c;\nfetch all from c;\ncommit;\n',
    );
    seen.push(r.stdout, r.stderr);
    expect(r.stderr).toBe('');
    const lines = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.includes('|'));
    expect(lines).toEqual([
      'Ada Example|*******3456',
      'Brian Sample|*******7654',
      'Chloe Fictional|*******6789',
      'Dev Placeholder|*******2222',
      'Eve Testperson|*******4444',
    ]);
  });

  it('denies COPY of masked columns and passes COPY of the others', () => {
    const denied = run('copy customers to stdout');
    expect(denied.status).not.toBe(0);
    expect(denied.stderr).toMatch(/masking-copy/);
    const csv = run('copy (select ssn from customers) to stdout with (format csv)');
    expect(csv.stderr).toMatch(/masking-copy/);
    const ok = run('copy (select id, name from customers order by id) to stdout');
    expect(ok.stderr).toBe('');
    expect(ok.stdout.split('\n')[0]).toBe('1\tAda Example');
  });

  it('redacts masked values echoed in errors', () => {
    const r = run('select ssn::int from customers');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /message withheld because the statement reads masked columns \(SQLSTATE 22P02, data exception\)/,
    );
    expect(r.stderr).not.toMatch(/000/);
    const dup = run('create unique index on customers (left(ssn, 3))');
    expect(dup.status).not.toBe(0);
    expect(dup.stderr).not.toMatch(/000/);
  });

  // A scan of a parent returns its children's rows: a rule on customers.ssn covers people.ssn once
  // customers inherits from people (the same holds for a partition under its partitioned parent).
  it('a parent table customers inherits from: its ssn (the children rows) comes back masked', () => {
    // Reviewed DDL through the gateway (the gateway's role owns customers): the catalog reloads.
    const ddl = (sql: string) => expect(run(sql).stderr, sql).toBe('');
    ddl('CREATE TABLE public.people (name text NOT NULL, ssn text NOT NULL)');
    ddl('ALTER TABLE public.customers INHERIT public.people');
    try {
      for (const sql of [
        'select name, ssn from people order by name',
        'select * from people order by name',
        'select p.ssn from customers c join people p using (name) order by c.id',
        'table people',
      ]) {
        const r = run(sql);
        expect(r.stderr, sql).toBe('');
        expect(r.stdout, sql).toContain('*******3456');
        expect(r.stdout, sql).not.toContain('000-12-3456');
      }
    } finally {
      ddl('ALTER TABLE public.customers NO INHERIT public.people');
      ddl('DROP TABLE public.people');
    }
  });

  it('a generated column computed from a masked one is redacted (select, *, table)', () => {
    const ddl = (sql: string) => expect(run(sql).stderr, sql).toBe('');
    ddl(
      "ALTER TABLE public.customers ADD COLUMN ssn_digits text GENERATED ALWAYS AS (replace(ssn, '-', '')) STORED",
    );
    try {
      for (const sql of [
        'select ssn_digits from customers order by id',
        'select * from customers order by id',
        'table customers',
      ]) {
        const r = run(sql);
        expect(r.stderr, sql).toBe('');
        expect(r.stdout.trim().split('\n'), sql).toHaveLength(5);
        expect(r.stdout, sql).not.toContain('000123456');
        expect(r.stdout, sql).not.toContain('000-12-3456');
      }
    } finally {
      ddl('ALTER TABLE public.customers DROP COLUMN ssn_digits');
    }
  });

  it('denies copying masked values into storage or side effects', () => {
    const insert = run('insert into public.notes select id, ssn from customers');
    expect(insert.stderr).toMatch(/masking-sink/);
    const ctas = run('create table leak as select card_pan from customers');
    expect(ctas.stderr).toMatch(/masking-sink/);
    const setting = run("select set_config('hoop.x', ssn, false) from customers");
    expect(setting.stderr).toMatch(/masking-sink/);
  });

  it('catches sensitive values in free text with the detectors', () => {
    const r = run('select body from notes order by id');
    expect(r.stdout.trim().split('\n')).toEqual([
      'customer paid with **** yesterday',
      'nothing sensitive here',
    ]);
  });

  it('node-postgres: masks in text and binary result formats, extended protocol', async () => {
    const client = new pg.Client({ connectionString: alice.url });
    await client.connect();
    try {
      const text = await client.query('select id, ssn, card_pan, email from customers where id = $1', [1]);
      expect(text.rows[0]).toEqual({
        id: 1,
        ssn: '*******3456',
        card_pan: '411111******1111',
        email: '****@example.com',
      });
      const binary = await client.query({
        text: 'select id, name, ssn, card_pan, lower(email) as e, row_to_json(c) as j from customers c where id = $1',
        values: [1],
        binary: true,
      });
      const row = binary.rows[0];
      seen.push(JSON.stringify(binary.rows));
      expect(row.ssn).toBe('*******3456');
      expect(row.card_pan).toBe('411111******1111');
      expect(row.name).toBe('Ada Example');
      // Extended protocol: the portal's Describe tells the filter the types, so a derived text value is '****'.
      expect(row.e).toBe('****');
      expectNoClearValue(JSON.stringify(row));
      for (const binary of [false, true]) {
        const derived = await client.query({
          text: 'select lower(ssn) as l, ssn || $2 as s, length(ssn) as n from customers where id = $1',
          values: [1, ''],
          binary,
        });
        seen.push(JSON.stringify(derived.rows));
        // Derived text values are redacted text, not NULL; a derived integer cannot hold '****': NULL.
        expect(derived.rows[0]).toEqual({ l: '****', s: '****', n: null });
      }
      const returning = await client.query({
        text: 'update customers set country = country where id = $1 returning ssn',
        values: [2],
        binary: true,
      });
      expect(returning.rows[0].ssn).toBe('*******7654');
    } finally {
      await client.end();
    }
  });

  it('psycopg 3: binary results and server-side cursors are masked', () => {
    const script = `
import json, sys, psycopg
out = {}
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    with conn.cursor(binary=True) as cur:
        cur.execute("select id, name, ssn, card_pan, email from customers where id = %s", (3,))
        out["binary"] = list(cur.fetchone())
        cur.execute("select ssn || '' from customers where id = %s", (3,))
        out["derived"] = cur.fetchone()[0]
    with conn.transaction():
        cur = conn.cursor(name="srv", binary=True)
        cur.execute("select name, card_pan from customers order by id")
        out["named"] = [list(r) for r in cur.fetchall()]
        cur.close()
print(json.dumps(out))
`;
    const r = spawnSync(PYTHON, ['-c', script, alice.url], { encoding: 'utf8', timeout: 60_000 });
    seen.push(r.stdout, r.stderr);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.binary).toEqual([3, 'Chloe Fictional', '*******6789', '378282*****0005', '****@example.net']);
    expect(out.derived === null || out.derived === '****').toBe(true);
    expect(out.named[0]).toEqual(['Ada Example', '411111******1111']);
    expect(out.named).toHaveLength(5);
  });

  it('pgjdbc with binary transfer and server-prepared statements is masked', () => {
    const source = `
import java.sql.*;
public class MaskProbe {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0])) {
      StringBuilder out = new StringBuilder();
      try (PreparedStatement ps = c.prepareStatement("select id, ssn, card_pan, email, name from customers where id = ?")) {
        for (int i = 1; i <= 5; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) { rs.next(); out.append(rs.getInt(1)).append(':').append(rs.getString(2)).append(':').append(rs.getString(3)).append(':').append(rs.getString(4)).append(':').append(rs.getString(5)).append('\\n'); }
        }
      }
      System.out.print(out);
    }
  }
}`;
    writeFileSync(join(work, 'MaskProbe.java'), source);
    const compiled = spawnSync('javac', ['-cp', JDBC_JAR, '-d', work, join(work, 'MaskProbe.java')], {
      encoding: 'utf8',
    });
    expect(compiled.status, compiled.stderr).toBe(0);
    const jdbc = `jdbc:postgresql://127.0.0.1:${alice.port}/prod-db?user=hoop&password=${encodeURIComponent(alice.password)}&prepareThreshold=1&sslmode=disable&binaryTransfer=true`;
    const r = spawnSync('java', ['-cp', `${JDBC_JAR}:${work}`, 'MaskProbe', jdbc], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    seen.push(r.stdout, r.stderr);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe('1:*******3456:411111******1111:****@example.com:Ada Example');
  });

  it('auditors: token (deterministic, joinable), redact, null; inference guard; fallback deny', () => {
    const r = psql(aubrey.url, 'select ssn, card_pan, email, name from customers order by id limit 2');
    seen.push(r.stdout, r.stderr);
    expect(r.stderr).toBe('');
    const [a, b] = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('|'));
    expect(a![0]).toMatch(/^tok_[A-Za-z0-9_-]{22}$/);
    expect(a![0]).not.toBe(b![0]);
    expect(a!.slice(1)).toEqual(['****', '', 'Ada Example']);
    // Same value, same token: joins still work.
    const again = psql(aubrey.url, 'select c1.ssn from customers c1 order by id limit 1');
    expect(again.stdout.trim()).toBe(a![0]);
    const where = psql(aubrey.url, "select name from customers where ssn like '000-12%'");
    expect(where.stderr).toMatch(/inference-guard/);
    const order = psql(aubrey.url, 'select name from customers order by card_pan');
    expect(order.stderr).toMatch(/inference-guard/);
    const join_ = psql(aubrey.url, 'select a.name from customers a join customers b on a.ssn = b.ssn');
    expect(join_.stderr).toMatch(/inference-guard/);
    const group = psql(aubrey.url, 'select count(*) from customers group by email');
    expect(group.stderr).toMatch(/inference-guard/);
    // No predicate, but an error only for some values: whether the 5th character is '1', and a CASE.
    for (const sql of [
      'select 1 / (ascii(substr(ssn, 5, 1)) - 49) from customers where id = 1',
      "select case when ssn like '000-1%' then 1 / 0 end from customers where id = 1",
      "select (replace(ssn, '-', '')::int - 123456)::smallint from customers where id = 1",
    ]) {
      const computed = psql(aubrey.url, sql);
      expect(computed.stderr, sql).toMatch(/inference-guard/);
      seen.push(computed.stderr);
    }
    const unknown = psql(aubrey.url, 'select * from pg_temp.nothing_here');
    expect(unknown.stderr).toMatch(/masking-fallback|does not exist/);
    seen.push(where.stderr, order.stderr, join_.stderr, group.stderr);
  });

  it('records masked columns and keeps only masked values in recordings', async () => {
    // Let the group commit settle, then read the log as the auditor.
    const exported = await stack.cli(aubreyHome, [
      'sessions',
      'export',
      '--since',
      '1h',
      '--format',
      'jsonl',
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    const records = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).record)
      .filter(Boolean);
    const statements = records.filter((r) => r.type === 'statement' && r.data?.masked_columns);
    expect(statements.length).toBeGreaterThan(5);
    const first = statements.find((r) =>
      /select id, name, email, ssn, card_pan, country from customers/.test(r.data.text),
    );
    expect(first.data.masked_columns).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ column: 'ssn', mask: 'partial', rule: 'ssn-partial', policy: 'engineers' }),
        expect.objectContaining({ column: 'email', mask: 'email-domain', rule: 'email-domain' }),
      ]),
    );
    const results = records.filter((r) => r.type === 'statement.result' && r.data?.result?.rows?.length);
    expect(results.length).toBeGreaterThan(5);
    for (const r of results) expectNoClearValue(JSON.stringify(r.data.result));
    expect(records.some((r) => r.type === 'statement.result' && r.data?.masked_columns)).toBe(true);
  });

  it('extended protocol: a statement Describe (then Bind with binary results) masks derived text as ****', async () => {
    const raw = await RawPg.connect({
      port: alice.port,
      user: 'hoop',
      database: 'prod-db',
      password: alice.password,
    });
    try {
      const sql = 'select lower(ssn) as l, ssn, id from customers where id = $1';
      const described = await raw.exchange(
        Buffer.concat([
          serialize.parse({ name: 's1', text: sql, types: [23] }),
          serialize.describe({ type: 'S', name: 's1' }),
          serialize.sync(),
        ]),
      );
      expect(described.map((m) => m.type).join('')).toBe('1tTZ');
      for (const binary of [false, true]) {
        const messages = await raw.exchange(
          Buffer.concat([
            serialize.bind({ statement: 's1', values: ['1'], binary }),
            serialize.execute({}),
            serialize.sync(),
          ]),
        );
        const data = messages.find((m) => m.type === 'D');
        expect(data, messages.map((m) => m.type).join('')).toBeDefined();
        const values = decodeDataRow(data!.body);
        seen.push(values.map((v) => v?.toString('utf8')).join('|'));
        expect(values[0]?.toString('utf8')).toBe('****');
        expect(values[1]?.toString('utf8')).toBe('*******3456');
      }
    } finally {
      raw.close();
    }
  });

  it('no clear value of a masked column reached any client', () => {
    expectNoClearValue(seen.join('\n'));
  });
});

describe('COPY TO STDOUT with masking.copy: mask', () => {
  let stack: Stack;
  let alice: Tunnel;
  const seen: string[] = [];

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES, extraConfig: 'masking:\n  copy: mask\n' });
    alice = await stack.connect(await stack.login('alice@example.com'));
  }, 180_000);

  afterAll(async () => {
    alice?.stop();
    await stack?.stop();
  });

  const run = (tunnel: Tunnel, sql: string) => {
    const r = psql(tunnel.url, sql);
    seen.push(r.stdout, r.stderr);
    return r;
  };

  it('psql COPY and \\copy stream masked rows that match the masked SELECT; other columns are as direct', () => {
    const cols = 'id, name, email, ssn, card_pan, country';
    const select = spawnSync(
      'psql',
      ['-X', '-At', '-F', '\t', alice.url, '-c', `select ${cols} from customers order by id`],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(select.stderr).toBe('');
    const expected = select.stdout;
    expect(expected).toContain('*******3456');
    const copy = run(alice, `copy (select ${cols} from customers order by id) to stdout`);
    expect(copy.stderr).toBe('');
    expect(copy.stdout).toBe(expected);
    const table = run(alice, 'copy customers to stdout');
    expect(table.stderr).toBe('');
    expect(table.stdout.split('\n')[0]).toMatch(
      /^1\tAda Example\t\*\*\*\*@example\.com\t\*{7}3456\t411111\*{6}1111\t/,
    );
    const clear = stack.pg.psql(
      'copy (select id, name, country from customers order by id) to stdout',
      'shop',
    );
    const viaGateway = run(alice, 'copy (select id, name, country from customers order by id) to stdout');
    expect(viaGateway.stdout).toBe(clear);
    const backslash = psqlScript(alice.url, `\\copy (select ${cols} from customers order by id) to stdout`);
    seen.push(backslash.stdout, backslash.stderr);
    expect(backslash.stderr).toBe('');
    expect(backslash.stdout).toBe(expected);
  });

  it('csv with header and options: quoting kept, masked columns rewritten, column list order followed', () => {
    const csv = run(
      alice,
      `copy (select name || ', ' || country as who, email, ssn from customers where id = 1) to stdout with (format csv, header, null 'NULL')`,
    );
    expect(csv.stderr).toBe('');
    expect(csv.stdout.split('\n').slice(0, 2)).toEqual([
      'who,email,ssn',
      expect.stringMatching(/^"Ada Example, [A-Z]+",\*\*\*\*@example\.com,\*{7}3456$/),
    ]);
    const listed = run(alice, 'copy customers (ssn, id) to stdout with (format csv)');
    expect(listed.stdout.split('\n')[0]).toBe('*******3456,1');
  });

  it('COPY of a table with a generated column: the columns PostgreSQL sends (generated left out), masked', () => {
    // Through the gateway (the catalog reloads: the gateway knows the column is generated).
    const ddl = (sql: string) => expect(run(alice, sql).stderr, sql).toBe('');
    ddl(
      "ALTER TABLE public.customers ADD COLUMN ssn_digits text GENERATED ALWAYS AS (replace(ssn, '-', '')) STORED",
    );
    try {
      const table = run(alice, 'copy customers to stdout');
      expect(table.stderr).toBe('');
      expect(table.stdout.split('\n')[0]).toMatch(
        /^1\tAda Example\t\*\*\*\*@example\.com\t\*{7}3456\t411111\*{6}1111\t[A-Z]+$/,
      );
      expect(table.stdout).not.toContain('000123456');
    } finally {
      ddl('ALTER TABLE public.customers DROP COLUMN ssn_digits');
    }
  });

  it('binary COPY stays refused even with masking.copy: mask', () => {
    const binary = run(alice, 'copy customers to stdout (format binary)');
    expect(binary.status).not.toBe(0);
    expect(binary.stderr).toMatch(/masking-copy/);
    expect(binary.stderr).toMatch(/binary/);
  });

  it('node-style raw protocol: COPY TO STDOUT through the gateway sends masked CopyData', async () => {
    const raw = await RawPg.connect({
      port: alice.port,
      user: 'hoop',
      database: 'prod-db',
      password: alice.password,
    });
    try {
      const messages = await raw.exchange(
        serialize.query('copy (select id, ssn, email from customers where id = 1) to stdout'),
      );
      expect(messages.map((m) => m.type).join('')).toBe('HdcCZ');
      const data = messages.find((m) => m.type === 'd')!.body.toString('utf8');
      seen.push(data);
      expect(data).toBe('1\t*******3456\t****@example.com\n');
    } finally {
      raw.close();
    }
  });

  it('no clear value of a masked column reached any client', () => {
    expectNoClearValue(seen.join('\n'));
  });
});
