/**
 * The native PostgreSQL listener (listen.postgres): libpq clients straight to the gateway, TLS
 * verified against the gateway's CA, an access token (`hoopctl token`) as the password, the
 * connection name as the database. Real clients — psql, node-postgres, psycopg 3, pgjdbc — and the
 * refusals: a policy denial, an expired token, a wrong database, no TLS, an agent kept to MCP; cancel
 * over plain TCP (as libpq sends it) and over TLS; and the records an auditor reads.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/shared/audit.js';
import { parseExport } from '../../src/shared/audit-export.js';
import { readLargeResultSlowly, waitFor } from '../harness/clients.js';
import { mintWorkloadToken, startWorkloadIssuer, type WorkloadIssuer } from '../harness/idp.js';
import { freePort } from '../harness/ports.js';
import { DEFAULT_POLICIES, HOOPCTL, type Stack, startStack } from '../harness/stack.js';

const PYTHON = '/usr/bin/python3';
const JDBC_JAR = '/usr/share/java/postgresql.jar';

/** Workload identities are agents here, kept to /mcp: the listener must refuse them as the tunnel does. */
const AGENTS = `
agents:
  - { name: ci-agents, kinds: [workload], mcp_only: true }
`;

const workloadIssuerYaml = (issuer: string) => (audience: string) =>
  `    - issuer: ${issuer}
      audience: ${audience}
      kind: workload
      claims: { subject: repository }
      groups: [ci-deploy]`;

/**
 * Run a program without blocking this process: the IdP and the workload issuer live here, and the
 * gateway asks them about tokens while the client waits.
 */
function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: 'utf8', env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...env }, timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

describe('native PostgreSQL listener', () => {
  let stack: Stack;
  let ci: WorkloadIssuer;
  let port: number;
  let alice: string;
  let auditor: string;
  let token: string;
  let ca: string;
  let work: string;

  /** A libpq connection string to the listener (TLS verified against the test CA by default). */
  const conninfo = (extra = '', dbname = 'prod-db') =>
    `host=localhost hostaddr=127.0.0.1 port=${port} dbname=${dbname} user=me sslmode=verify-full sslrootcert=${ca} ${extra}`;
  const psql = (args: string[], password: string, conn = conninfo()) =>
    run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', conn, ...args], { PGPASSWORD: password });

  beforeAll(async () => {
    ci = await startWorkloadIssuer();
    port = await freePort();
    stack = await startStack({
      policies: DEFAULT_POLICIES,
      listenExtra: `  postgres: 127.0.0.1:${port}`,
      extraIssuers: workloadIssuerYaml(ci.issuer),
      extraConfig: AGENTS,
    });
    ca = stack.certs!.caCert;
    alice = await stack.login('alice@example.com');
    auditor = await stack.login('aubrey@example.com');
    const printed = await stack.cli(alice, ['token']);
    expect(printed.code, printed.stderr).toBe(0);
    token = printed.stdout.trim();
    work = mkdtempSync(join(tmpdir(), 'hoop-native-'));
  });
  afterAll(async () => {
    await stack?.stop();
    await ci?.stop();
  });

  /** Every record of the last hour, read the way an auditor does. */
  async function records(): Promise<AuditRecord[]> {
    const result = await stack.cli(auditor, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(result.code, result.stderr).toBe(0);
    return parseExport(result.stdout).records;
  }

  it('psql with sslmode=verify-full and PGPASSWORD=$(hoopctl token); the session is recorded as native', async () => {
    const r = await psql(['-c', 'select current_user', '-c', 'show application_name'], token);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hoop_gateway\npsql\n');
    const started = (await records()).filter(
      (rec) => rec.type === 'session.started' && rec.data.client === 'native',
    );
    expect(started.length).toBeGreaterThan(0);
    expect(started[0]!.identity?.subject).toBeTruthy();
    expect(started[0]!.data).toMatchObject({ client: 'native', user: 'me', application_name: 'psql' });
    expect(started[0]!.source).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it('a CI job with client credentials: PGPASSWORD=$(hoopctl token), no tunnel process', async () => {
    const home = mkdtempSync(join(tmpdir(), 'hoop-native-ci-'));
    const printed = await run(process.execPath, [HOOPCTL, 'token'], {
      ...stack.ciEnv(),
      HOOPCTL_HOME: home,
      HOOPCTL_GATEWAY: stack.gatewayUrl,
      HOOPCTL_CA_FILE: ca,
    });
    expect(printed.status, printed.stderr).toBe(0);
    const r = await psql(
      ['-c', 'create temp table t (x int)', '-c', 'insert into t values (1)', '-c', 'select count(*) from t'],
      printed.stdout.trim(),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1');
  });

  it('node-postgres: extended protocol, named statements; a policy refusal is the gateway’s 42501', async () => {
    const client = new pg.Client({
      host: 'localhost',
      port,
      database: 'prod-db',
      user: 'app',
      password: token,
      ssl: { ca: readFileSync(ca, 'utf8') },
      application_name: 'orders-service',
    });
    await client.connect();
    try {
      const params = await client.query('select $1::int + $2::int as sum', [2, 3]);
      expect(params.rows).toEqual([{ sum: 5 }]);
      for (let i = 1; i <= 3; i++) {
        const named = await client.query({
          name: 'by-id',
          text: 'select id from customers where id = $1',
          values: [i],
        });
        expect(named.rows).toEqual([{ id: i }]);
      }
      const denied = await client
        .query('grant select on customers to public')
        .catch((e: Error & { code?: string; routine?: string }) => e);
      expect(denied).toMatchObject({ code: '42501', routine: 'hoop_policy_denied' });
      expect((await client.query('select 1 as still')).rows).toEqual([{ still: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('psycopg 3 and pgjdbc, TLS verified', async () => {
    const py = await run(
      PYTHON,
      [
        '-c',
        `import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    print(conn.execute("select %s::int * 2", (21,)).fetchone()[0])
    print(conn.execute("select count(*) from customers").fetchone()[0] > 0)`,
        conninfo(),
      ],
      { PGPASSWORD: token },
    );
    expect(py.stderr).toBe('');
    expect(py.stdout).toBe('42\nTrue\n');

    writeFileSync(
      join(work, 'Native.java'),
      `import java.sql.*;
public class Native {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0]);
         PreparedStatement ps = c.prepareStatement("select ?::int + 1")) {
      ps.setInt(1, 41);
      try (ResultSet rs = ps.executeQuery()) { rs.next(); System.out.println(rs.getInt(1)); }
    }
  }
}`,
    );
    expect((await run('javac', ['-cp', JDBC_JAR, '-d', work, join(work, 'Native.java')])).status).toBe(0);
    const url = `jdbc:postgresql://localhost:${port}/prod-db?user=me&password=${encodeURIComponent(token)}&sslmode=verify-full&sslrootcert=${ca}`;
    const java = await run('java', ['-cp', `${JDBC_JAR}:${work}`, 'Native', url]);
    expect(java.stderr).toBe('');
    expect(java.stdout).toBe('42\n');
  });

  it('refuses an expired token (28P01), a wrong database (3D000), no TLS (28000) and an agent kept to MCP', async () => {
    const expired = await mintWorkloadToken(ci, stack.gatewayUrl, {}, { expiresIn: -300 });
    const r1 = await psql(['-c', 'select 1'], expired);
    expect(r1.status).not.toBe(0);
    expect(r1.stderr).toMatch(/password authentication failed for user "me".*expired.*hoopctl token/);

    const r2 = await psql(['-c', 'select 1'], token, conninfo('', 'no-such-db'));
    expect(r2.stderr).toMatch(/no connection "no-such-db" for alice/);

    const r3 = await psql(
      ['-c', 'select 1'],
      token,
      conninfo().replace('sslmode=verify-full', 'sslmode=disable'),
    );
    expect(r3.stderr).toMatch(/TLS is required on this listener/);

    const agentToken = await mintWorkloadToken(ci, stack.gatewayUrl);
    const r4 = await psql(['-c', 'select 1'], agentToken);
    expect(r4.stderr).toMatch(/reaches databases only through MCP/);

    // The SQLSTATE of each refusal, as a driver sees it.
    const code = (password: string, options: pg.ClientConfig = {}) => {
      const client = new pg.Client({
        host: 'localhost',
        port,
        database: 'prod-db',
        user: 'me',
        password,
        ssl: { ca: readFileSync(ca, 'utf8') },
        ...options,
      });
      return client.connect().then(
        () => client.end().then(() => 'connected'),
        (e: Error & { code?: string }) => e.code ?? e.message,
      );
    };
    expect(await code(expired)).toBe('28P01');
    expect(await code(token, { database: 'no-such-db' })).toBe('3D000');
    expect(await code(token, { ssl: false })).toBe('28000');
    expect(await code(agentToken)).toBe('28000');
    expect(await code('not-a-token')).toBe('28P01');

    const failed = (await records()).filter((rec) => rec.type === 'auth.failed');
    expect(failed.map((rec) => rec.data.reason)).toEqual(expect.arrayContaining(['expired', 'no_access']));
    expect(
      failed.find((rec) => rec.data.reason === 'no_access' && rec.connection === 'no-such-db'),
    ).toBeTruthy();
  });

  /** A psql running pg_sleep, once the database shows it running. */
  async function sleepingPsql() {
    const child = spawn('psql', ['-X', conninfo(), '-c', 'select pg_sleep(60)'], {
      env: { ...process.env, PGPASSWORD: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
    await waitFor(
      () =>
        stack.pg.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)'").trim() ===
        '1',
      20_000,
      'pg_sleep to run',
    );
    return { child, exited, stderr: () => stderr };
  }

  it('cancel: psql sends its CancelRequest without TLS, as libpq does; the statement is cancelled', async () => {
    const sleeper = await sleepingPsql();
    sleeper.child.kill('SIGINT');
    expect(await sleeper.exited).not.toBe(0);
    expect(sleeper.stderr()).toMatch(/canceling statement due to user request/);
  });

  it('cancel over TLS with the key the gateway made; a tunnel session’s key does nothing here', async () => {
    const client = new pg.Client({
      host: 'localhost',
      port,
      database: 'prod-db',
      user: 'me',
      password: token,
      ssl: { ca: readFileSync(ca, 'utf8') },
    });
    await client.connect();
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    const sleeping = client.query('select pg_sleep(60)').catch((e: Error & { code?: string }) => e.code);
    await waitFor(
      () =>
        stack.pg.psql("select count(*) from pg_stat_activity where query = 'select pg_sleep(60)'").trim() ===
        '1',
      20_000,
      'pg_sleep to run',
    );
    await sendCancel(port, processID, secretKey, ca);
    expect(await sleeping).toBe('57014');
    await client.end();

    // The key of a session opened through `hoopctl connect` is not accepted by this listener.
    const tunnel = await stack.connect(alice);
    const viaTunnel = new pg.Client({ connectionString: tunnel.url });
    await viaTunnel.connect();
    try {
      const k = viaTunnel as unknown as { processID: number; secretKey: number };
      const short = viaTunnel.query('select pg_sleep(1.5) as slept');
      await waitFor(
        () =>
          stack.pg
            .psql("select count(*) from pg_stat_activity where query like 'select pg_sleep(1.5)%'")
            .trim() === '1',
        20_000,
        'pg_sleep to run',
      );
      await sendCancel(port, k.processID, k.secretKey);
      expect((await short).rows).toEqual([{ slept: '' }]);
    } finally {
      await viaTunnel.end();
      tunnel.stop();
    }
  });
});

/** A CancelRequest to the listener: over TLS when `ca` is given (SSLRequest first), else plain. */
async function sendCancel(port: number, processId: number, secretKey: number, ca?: string): Promise<void> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  const socket = netConnect({ host: '127.0.0.1', port });
  await new Promise((r, j) => socket.once('connect', r).once('error', j));
  if (!ca) {
    await new Promise<void>((r) => socket.end(packet, () => r()));
    await new Promise((r) => socket.once('close', r));
    return;
  }
  const ssl = Buffer.alloc(8);
  ssl.writeInt32BE(8, 0);
  ssl.writeInt32BE(80877103, 4);
  socket.write(ssl);
  const answer = await new Promise<Buffer>((r) => socket.once('data', r));
  expect(answer.toString()).toBe('S');
  const secure = tlsConnect({ socket, ca: readFileSync(ca), servername: 'localhost' });
  await new Promise((r, j) => secure.once('secureConnect', r).once('error', j));
  await new Promise<void>((r) => secure.end(packet, () => r()));
  await new Promise((r) => secure.once('close', r));
}

describe('native PostgreSQL listener without TLS (a loopback address, insecure_loopback)', () => {
  let stack: Stack;
  let port: number;
  let token: string;

  beforeAll(async () => {
    port = await freePort();
    // tls: false makes the harness set listen.insecure_loopback on 127.0.0.1, the only way plain is allowed.
    stack = await startStack({
      tls: false,
      listenExtra: `  postgres: 127.0.0.1:${port}`,
      extraConfig: 'shutdown:\n  grace: 5s\n',
    });
    const alice = await stack.login('alice@example.com');
    const printed = await stack.cli(alice, ['token']);
    expect(printed.code, printed.stderr).toBe(0);
    token = printed.stdout.trim();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const psql = (sslmode: string) =>
    run(
      'psql',
      [
        '-X',
        '-At',
        `host=127.0.0.1 port=${port} dbname=prod-db user=me sslmode=${sslmode}`,
        '-c',
        'select 7',
      ],
      { PGPASSWORD: token },
    );

  it('plain libpq logins work; SSLRequest is answered N, so sslmode=require is refused by the client', async () => {
    const plain = await psql('disable');
    expect(plain.stderr).toBe('');
    expect(plain.stdout).toBe('7\n');
    // prefer: SSLRequest, 'N', then the same login in plain.
    const prefer = await psql('prefer');
    expect(prefer.stderr).toBe('');
    expect(prefer.stdout).toBe('7\n');
    const require = await psql('require');
    expect(require.status).not.toBe(0);
    expect(require.stderr).toMatch(/server does not support SSL/);
  });

  it('a large result read by a client that keeps stopping arrives byte for byte as from the database', async () => {
    const url = `postgres://me:${encodeURIComponent(token)}@127.0.0.1:${port}/prod-db?sslmode=disable`;
    const through = await readLargeResultSlowly(url);
    const expected = await readLargeResultSlowly(stack.pg.url('shop'));
    expect(through.length).toBe(20000);
    expect(through).toEqual(expected);
  }, 120_000);

  it('SIGTERM: new native logins get 57P03, an open native session is ended with 57P01 after the grace', async () => {
    const client = (application_name: string) =>
      new pg.Client({
        host: '127.0.0.1',
        port,
        database: 'prod-db',
        user: 'me',
        password: token,
        application_name,
      });
    const idle = client('idle');
    const idleEnded = new Promise<Error & { code?: string }>((resolve) => idle.on('error', resolve));
    await idle.connect();
    expect((await idle.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

    const gateway = stack.gatewayProcess();
    const exited = new Promise<number | null>((resolve) => gateway.once('exit', resolve));
    gateway.kill('SIGTERM');
    await waitFor(
      async () => (await fetch(`${stack.gatewayUrl}/readyz`).catch(() => undefined))?.status === 503,
      15_000,
      'the drain to begin',
    );
    const late = await client('late')
      .connect()
      .then(
        () => 'connected',
        (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
      );
    expect(late).toMatch(/^57P03: hoop: the gateway is shutting down/);

    expect((await idleEnded).code).toBe('57P01');
    expect(await exited).toBe(0);
  });
});

describe('native PostgreSQL listener: one deadline for the unauthenticated phase (listen.login_timeout)', () => {
  let stack: Stack;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    stack = await startStack({ listenExtra: `  postgres: 127.0.0.1:${port}\n  login_timeout: 3s` });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const sslRequest = () => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(80877103, 4);
    return b;
  };

  /** TCP, SSLRequest, 'S', TLS verified against the test CA: the client the listener hands on. */
  async function tlsClient() {
    const raw = netConnect({ host: '127.0.0.1', port });
    await new Promise((r) => raw.once('connect', r));
    raw.write(sslRequest());
    const answer = await new Promise<string>((r) => raw.once('data', (d: Buffer) => r(d.toString('latin1'))));
    expect(answer).toBe('S');
    const tls = tlsConnect({ socket: raw, servername: 'localhost', ca: readFileSync(stack.certs!.caCert) });
    await new Promise((r) => tls.once('secureConnect', r));
    let answers = '';
    tls.on('data', (d: Buffer) => {
      answers += d.toString('latin1');
    });
    const closed = new Promise<void>((r) => tls.once('close', () => r()));
    tls.on('error', () => {});
    return { tls, closed, answers: () => answers };
  }

  it('an SSLRequest inside TLS is refused as PostgreSQL refuses a second one (FATAL 0A000), not answered N', async () => {
    const c = await tlsClient();
    c.tls.write(sslRequest());
    await c.closed;
    expect(c.answers()).toContain('C0A000');
    expect(c.answers()).not.toMatch(/^N/);
  });

  it('a client that starts a login and never sends its password is cut off at the deadline (FATAL 08006)', async () => {
    const c = await tlsClient();
    const body = Buffer.from('user\0me\0database\0prod-db\0\0');
    const header = Buffer.alloc(8);
    header.writeInt32BE(8 + body.length, 0);
    header.writeInt32BE(196608, 4);
    c.tls.write(Buffer.concat([header, body]));
    // Bounds the wait only: the 3 s login_timeout (from TCP connect) ends it long before this.
    await Promise.race([
      c.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('still open after 20 s')), 20_000)),
    ]);
    expect(c.answers().startsWith('R')).toBe(true); // AuthenticationCleartextPassword was asked for
    expect(c.answers()).toContain('C08006');
    expect(c.answers()).toContain('timed out waiting for the client to log in');
  });
});
