/**
 * Just-in-time approval and time-boxed access, end to end with real parts: psql, node-postgres and a
 * raw pipelining client through `hoopctl connect`, `hoopctl exec`, reviewers deciding with the CLI,
 * and two gateway processes sharing one PostgreSQL store.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as netConnect, type Socket } from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AccessRequestListResponse,
  ApprovalListResponse,
  ApprovalView,
  ConnectionView,
} from '../../src/shared/api.js';
import { ScramClient } from '../../src/shared/scram.js';
import { freePort } from '../harness/ports.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';
import { GATEWAY, type Stack, startStack, type Tunnel } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: two-person, approve: [write, ddl], approvers: [db-reviewers, audit], approvals_required: 2 }
  - name: reviewers
    groups: [db-reviewers]
    connections: [prod-db]
    review: true
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: peer-review, approve: [write], approvers: [db-reviewers] }
  - name: auditors
    groups: [audit]
    review: true
    audit: true
  - name: break-glass
    groups: [engineering]
    connections: [prod-db]
    requestable: true
    max_duration: 1h
    rules:
      - { name: incident-writes, allow: [read, write, transaction, session] }
  - name: schema-window
    groups: [engineering]
    connections: [prod-db]
    requestable: true
    max_duration: 1h
    rules:
      - { name: window-ddl, allow: [ddl] }
`;

let debugInfo = () => '';

/** Poll until `probe` returns something (no timing is asserted: this only bounds a wait). */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  limitMs = 30_000,
): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}\n${debugInfo()}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function runPsql(url: string, sql: string): Running {
  const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const previous = debugInfo;
  debugInfo = () => `${previous()}\n--- psql ${sql}: ${stdout} ${stderr}`;
  return {
    child,
    done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))),
  };
}

/** A raw protocol client through the tunnel: SCRAM login, then whatever bytes the test sends. */
class RawClient {
  private buffer = Buffer.alloc(0);
  private readonly queue: { type: string; body: Buffer }[] = [];
  private wake: (() => void) | undefined;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 5) {
        const length = this.buffer.readInt32BE(1);
        if (this.buffer.length < 1 + length) break;
        this.queue.push({
          type: String.fromCharCode(this.buffer[0]!),
          body: this.buffer.subarray(5, 1 + length),
        });
        this.buffer = this.buffer.subarray(1 + length);
      }
      this.wake?.();
    });
  }
  static async open(tunnel: Tunnel): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port: tunnel.port });
    await new Promise((r) => socket.once('connect', r));
    const client = new RawClient(socket);
    socket.write(serialize.startup({ user: 'hoop', database: 'prod-db' }));
    await client.next(); // AuthenticationSASL
    const scram = new ScramClient(tunnel.password);
    socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
    const cont = await client.next();
    socket.write(serialize.sendSCRAMClientFinalMessage(scram.final(cont.body.subarray(4).toString('utf8'))));
    while ((await client.next()).type !== 'Z') {
      // AuthenticationSASLFinal, AuthenticationOk, ParameterStatus, BackendKeyData
    }
    return client;
  }
  async next(): Promise<{ type: string; body: Buffer }> {
    while (this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    return this.queue.shift()!;
  }
}

const fieldsOf = (body: Buffer): Record<string, string> => {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    out[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
};

describe('approvals: statements held on the wire until a reviewer decides', () => {
  let stack: Stack;
  let storePg: PgServer;
  let alice: string;
  let rita: string;
  let aubrey: string;
  let tunnel: Tunnel;
  let lastSeen = '';
  let hookServer: Server;
  const hooks: { event: string; signature: string; body: string }[] = [];

  const pendingFor = (home: string, fragment: string, opts: { all?: boolean; status?: string } = {}) =>
    eventually(`an approval request for "${fragment}"`, async () => {
      const result = await stack.cli(home, ['approvals', '--all', '--json']);
      if (result.code !== 0) throw new Error(`${result.stderr}\n${stack.gatewayLog().slice(-3000)}`);
      lastSeen = `${result.stdout}\n--- gateway log:\n${stack.gatewayLog().slice(-3000)}`;
      const list = JSON.parse(result.stdout) as ApprovalListResponse;
      return list.approvals.find(
        (a) => a.statement.includes(fragment) && a.status === (opts.status ?? 'pending'),
      );
    });

  const approvalById = async (home: string, id: string): Promise<ApprovalView> => {
    const result = await stack.cli(home, ['approvals', '--all', '--json']);
    return (JSON.parse(result.stdout) as ApprovalListResponse).approvals.find((a) => a.id === id)!;
  };

  beforeAll(async () => {
    debugInfo = () => lastSeen;
    // The store lives in its own PostgreSQL, so a second gateway process can share it.
    storePg = await startPostgres();
    storePg.psql('CREATE DATABASE hoop_store');
    // A webhook receiver: the gateway notifies it of requests and decisions, signed.
    hookServer = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        hooks.push({
          event: String(req.headers['x-hoop-event']),
          signature: String(req.headers['x-hoop-signature']),
          body,
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
    process.env.HOOP_TEST_WEBHOOK_SECRET = 'hook-secret';
    stack = await startStack({
      policies: POLICIES,
      store: `  url: ${storePg.url('hoop_store')}`,
      extraConfig: `notify:
  webhooks:
    - { url: "http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook", secret_env: HOOP_TEST_WEBHOOK_SECRET }
`,
    });
    [alice, rita, aubrey] = await Promise.all([
      stack.login('alice@example.com'),
      stack.login('rita@example.com'),
      stack.login('aubrey@example.com'),
    ]);
    tunnel = await stack.connect(alice);
  }, 120_000);
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
    storePg?.stop();
    hookServer?.close();
  });

  it('holds a DELETE from psql until a reviewer approves it, then it runs; every step is recorded', async () => {
    const psql = runPsql(tunnel.url, 'delete from orders where id = 1');
    const request = await pendingFor(rita, 'id = 1');
    expect(request).toMatchObject({
      statement: 'delete from orders where id = 1',
      rule: 'changes-need-review',
      policy: 'engineers',
      approvers: ['db-reviewers'],
      mode: 'wait',
      can_decide: true,
    });
    expect(request.requester.subject).toBe('alice@example.com');
    // The reviewer's list shows it in full, with the command that decides it.
    const listed = await stack.cli(rita, ['approvals']);
    expect(listed.stdout).toContain('delete from orders where id = 1');
    expect(listed.stdout).toContain(`hoopctl approve ${request.id}`);

    const approved = await stack.cli(rita, ['approve', request.id, '--comment', 'one order, fine']);
    expect(approved.code, approved.stderr).toBe(0);
    const result = await psql.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('DELETE 1');
    expect(result.stderr).toContain(`waiting for approval #${request.id}`);
    expect(result.stderr).toContain(`hoopctl approve ${request.id}`);
    expect(stack.pg.psql('select count(*) from orders where id = 1', 'shop').trim()).toBe('0');

    const used = await approvalById(rita, request.id);
    expect(used.status).toBe('used');
    const shown = await stack.cli(aubrey, ['sessions', 'show', used.session!, '--json']);
    const records = (
      JSON.parse(shown.stdout) as { records: { type: string; data: Record<string, unknown> }[] }
    ).records;
    const statement = records.find(
      (r) => r.type === 'statement' && r.data.approval_id === Number(request.id),
    )!;
    expect(statement).toBeDefined();
    const linked = records
      .filter((r) => r.data.statement_id === statement.data.statement_id)
      .map((r) => r.type);
    expect(linked).toEqual(['statement', 'approval.requested', 'approval.granted', 'statement.result']);

    // Webhooks: the request and the decision, each signed with HMAC-SHA256 of its body.
    const delivered = await eventually('the webhook deliveries', async () => {
      const mine = hooks.filter((h) => JSON.parse(h.body).data?.id === request.id);
      return mine.length >= 2 ? mine : undefined;
    });
    expect(delivered.map((h) => h.event).sort()).toEqual(['approval.granted', 'approval.requested']);
    for (const h of delivered) {
      expect(h.signature).toBe(`sha256=${createHmac('sha256', 'hook-secret').update(h.body).digest('hex')}`);
    }
    const requested = JSON.parse(delivered.find((h) => h.event === 'approval.requested')!.body);
    expect(requested.command).toBe(`hoopctl approve ${request.id}`);
    expect(requested.data.statement).toBe('delete from orders where id = 1');
  });

  it('notifies webhooks of statements policy refused outright (policy.blocked)', async () => {
    const denied = await runPsql(tunnel.url, 'grant select on orders to public').done;
    expect(denied.stderr).toMatch(/denied by rule "no-admin"/);
    const hook = await eventually('the policy.blocked webhook', async () =>
      hooks.find(
        (h) =>
          h.event === 'policy.blocked' &&
          JSON.parse(h.body).data.statement === 'grant select on orders to public',
      ),
    );
    expect(JSON.parse(hook.body).data).toMatchObject({
      rule: 'no-admin',
      policy: 'engineers',
      requester: 'alice@example.com',
    });
  });

  it('refuses self-approval, and approval by someone outside the approver groups', async () => {
    const ritaTunnel = await stack.connect(rita);
    try {
      const psql = runPsql(ritaTunnel.url, 'update orders set total_cents = 1 where id = 2');
      const request = await pendingFor(rita, 'total_cents = 1 where id = 2');
      expect(request.can_decide).toBe(false);
      const self = await stack.cli(rita, ['approve', request.id]);
      expect(self.code).toBe(4);
      expect(self.stderr).toMatch(/cannot decide your own request/);
      const engineer = await stack.cli(alice, ['approve', request.id]);
      expect(engineer.code).toBe(4);
      expect(engineer.stderr).toMatch(/review role/);
      // aubrey reviews, but this rule names db-reviewers only.
      const outsider = await stack.cli(aubrey, ['approve', request.id]);
      expect(outsider.code).toBe(4);
      expect(outsider.stderr).toMatch(/needs an approver from db-reviewers/);
      expect((await approvalById(rita, request.id)).status).toBe('pending');
      psql.child.kill('SIGINT');
      await psql.done;
    } finally {
      ritaTunnel.stop();
    }
  });

  it('rejects with the reason (42501) and the session stays usable, transaction state consistent', async () => {
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      await client.query('begin');
      const held = client.query('delete from orders where customer_id = 3');
      const failed = held.catch((err: Error & { code?: string; routine?: string }) => err);
      const request = await pendingFor(rita, 'customer_id = 3');
      const rejected = await stack.cli(rita, ['reject', request.id, '--reason', 'deletes a whole customer']);
      expect(rejected.code, rejected.stderr).toBe(0);
      const err = (await failed) as Error & { code?: string; routine?: string };
      expect(err.code).toBe('42501');
      expect(err.routine).toBe('hoop_approval_rejected');
      expect(err.message).toMatch(new RegExp(`#${request.id} was rejected by .*: deletes a whole customer`));
      // Like any error inside a block: aborted on both sides until ROLLBACK.
      await expect(client.query('select 1')).rejects.toThrow(/current transaction is aborted/);
      await client.query('rollback');
      expect(
        (await client.query('select count(*)::int as n from orders where customer_id = 3')).rows[0].n,
      ).toBe(10);
    } finally {
      await client.end();
    }
  });

  it('expires a request nobody decides: SQLSTATE 57014 naming it, exit 5', async () => {
    const result = await stack.cli(alice, [
      'exec',
      'prod-db',
      '-c',
      'delete from orders where id = 3',
      '--approval-timeout',
      '1s',
    ]);
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/approval request #(\d+) expired/);
    expect(result.stderr).toContain('SQLSTATE 57014');
    const id = /#(\d+) expired/.exec(result.stderr)![1]!;
    expect((await approvalById(rita, id)).status).toBe('expired');
    expect(stack.pg.psql('select count(*) from orders where id = 3', 'shop').trim()).toBe('1');
  });

  it("withdraws the request when the client cancels (psql's Ctrl-C)", async () => {
    const psql = runPsql(tunnel.url, 'delete from orders where id = 4');
    const request = await pendingFor(rita, 'id = 4');
    psql.child.kill('SIGINT');
    const result = await psql.done;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/canceling statement due to user request/);
    expect((await approvalById(rita, request.id)).status).toBe('withdrawn');
    const late = await stack.cli(rita, ['approve', request.id]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(/already withdrawn/);
    expect(stack.pg.psql('select count(*) from orders where id = 4', 'shop').trim()).toBe('1');
  });

  it('holds a statement in the middle of a pipelined extended-protocol batch; the rest flows in order', async () => {
    const raw = await RawClient.open(tunnel);
    const batch = (text: string, values: string[] = []) => [
      serialize.parse({ name: '', text, types: [] }),
      serialize.bind({ portal: '', statement: '', values }),
      serialize.execute({ portal: '', rows: 0 }),
      serialize.sync(),
    ];
    raw.socket.write(
      Buffer.concat([
        ...batch('select 41 + 1'),
        ...batch('delete from orders where id = $1', ['5']),
        ...batch("select 'after'"),
      ]),
    );
    const seen: string[] = [];
    let waiting: Record<string, string> | undefined;
    // The notice about the second statement comes after the first statement's whole answer.
    while (!waiting) {
      const m = await raw.next();
      if (m.type === 'N' && fieldsOf(m.body).R === 'hoop_approval_waiting') waiting = fieldsOf(m.body);
      else seen.push(m.type === 'C' ? `C:${m.body.toString('utf8', 0, m.body.length - 1)}` : m.type);
    }
    // The first statement's answer came back while the second waits.
    expect(seen).toEqual(['1', '2', 'D', 'C:SELECT 1', 'Z']);
    const id = /#(\d+)/.exec(waiting.M!)![1]!;
    const request = await approvalById(rita, id);
    expect(request.statement).toBe('delete from orders where id = $1');
    expect(request.params).toEqual(['5']);
    // exec cannot send bound parameters: --approval without SQL says so instead of sending the bare text.
    const exec = await stack.cli(alice, ['exec', 'prod-db', '--approval', id]);
    expect(exec.code).toBe(2);
    expect(exec.stderr).toMatch(/approved a statement with 1 bound parameter, which exec cannot send/);
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);
    const rest: string[] = [];
    let ready = 0;
    while (ready < 2) {
      const m = await raw.next();
      if (m.type === 'Z') ready++;
      if (m.type === 'D') rest.push(`D:${m.body.toString('utf8', 6)}`);
      else rest.push(m.type === 'C' ? `C:${m.body.toString('utf8', 0, m.body.length - 1)}` : m.type);
    }
    expect(rest).toEqual(['N', '1', '2', 'C:DELETE 1', 'Z', '1', '2', 'D:after', 'C:SELECT 1', 'Z']);
    raw.socket.end(serialize.end());
  });

  it('exec --no-wait files the request (exit 5, id on stdout); --approval runs exactly that statement, once', async () => {
    const sql = 'delete from orders where id = 6';
    const filed = await stack.cli(alice, ['exec', 'prod-db', '-c', sql, '--no-wait']);
    expect(filed.code).toBe(5);
    const id = filed.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    expect(filed.stderr).toContain(`hoopctl exec prod-db --approval ${id}`);
    // Pending after the CLI has gone.
    const request = await approvalById(rita, id);
    expect(request).toMatchObject({ status: 'pending', mode: 'deferred', statement: sql });

    // Not approved yet: refused.
    const early = await stack.cli(alice, ['exec', 'prod-db', '--approval', id, '-c', sql]);
    expect(early.code).toBe(5);
    expect(early.stderr).toMatch(/is pending, not approved/);
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);

    // Another statement under this approval: refused.
    const other = await stack.cli(alice, [
      'exec',
      'prod-db',
      '--approval',
      id,
      '-c',
      'delete from orders where id = 7',
    ]);
    expect(other.code).toBe(5);
    expect(other.stderr).toMatch(/for a different statement/);
    // Someone else: refused (rita's own writes need approval under her policy).
    const someoneElse = await stack.cli(rita, ['exec', 'prod-db', '--approval', id, '-c', sql]);
    expect(someoneElse.code).toBe(5);
    expect(someoneElse.stderr).toMatch(/requested by someone else/);

    const run = await stack.cli(alice, ['exec', 'prod-db', '--approval', id, '-c', sql]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('DELETE 1');
    const again = await stack.cli(alice, ['exec', 'prod-db', '--approval', id, '-c', sql]);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/already been used/);
  });

  it('exec --approval ID with no SQL (stdin an empty pipe) fetches the approved statement and runs exactly it', async () => {
    const sql = 'delete  from orders where id = 13 -- exact text, odd spacing and all';
    const filed = await stack.cli(alice, ['exec', 'prod-db', '-c', sql, '--no-wait']);
    expect(filed.code, filed.stderr).toBe(5);
    const id = filed.stdout.trim();
    expect((await stack.cli(rita, ['approve', id])).code).toBe(0);
    const run = await stack.cli(alice, ['exec', 'prod-db', '--approval', id], { input: '' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('DELETE 1');
    expect(stack.pg.psql('select count(*) from orders where id = 13', 'shop').trim()).toBe('0');
    expect((await approvalById(alice, id)).status).toBe('used');
    const unknown = await stack.cli(alice, ['exec', 'prod-db', '--approval', '999999']);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr.trim()).toBe(
      'error: there is no approval request #999999 of yours (hoopctl approvals --all)',
    );
  });

  it('an approval held in one session cannot be replayed in another', async () => {
    const psql = runPsql(tunnel.url, 'delete from orders where id = 8');
    const request = await pendingFor(rita, 'id = 8');
    const replay = await stack.cli(alice, [
      'exec',
      'prod-db',
      '--approval',
      request.id,
      '-c',
      'delete from orders where id = 8',
    ]);
    expect(replay.code).toBe(5);
    expect(replay.stderr).toMatch(/cannot be run elsewhere/);
    expect((await stack.cli(rita, ['approve', request.id])).code).toBe(0);
    expect((await psql.done).stdout.trim()).toBe('DELETE 1');
  });

  it('a rule asking for two approvers waits for two distinct ones; exec shows progress lines while it waits', async () => {
    const exec = stack.cli(
      '/nonexistent-home',
      ['exec', 'prod-db', '-c', 'delete from orders where id = 9'],
      { env: stack.ciEnv() },
    );
    const request = await pendingFor(rita, 'id = 9');
    expect(request.approvals_required).toBe(2);
    const first = await stack.cli(rita, ['approve', request.id]);
    expect(first.stdout).toMatch(/1 of 2.*another approver/);
    const twice = await stack.cli(rita, ['approve', request.id]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already approved/);
    expect((await approvalById(rita, request.id)).status).toBe('pending');
    expect((await stack.cli(aubrey, ['approve', request.id])).code).toBe(0);
    const result = await exec;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`waiting for approval #${request.id}`);
    expect(result.stderr).toMatch(/approval #\d+ granted by Rita Reviewer|granted by rita/i);
    expect(result.stdout).toContain('DELETE 1');
  });

  it('time-boxed access: once approved the policy applies, then vanishes by itself', async () => {
    const tooLong = await stack.cli(alice, [
      'request',
      'prod-db',
      '--policy',
      'break-glass',
      '--for',
      '2h',
      '--reason',
      'x',
    ]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/at most 1h/);
    const notRequestable = await stack.cli(alice, [
      'request',
      'prod-db',
      '--policy',
      'engineers',
      '--for',
      '1h',
      '--reason',
      'x',
    ]);
    expect(notRequestable.stderr).toMatch(/not requestable/);
    // Before a grant, `connections` names the policy one may ask for and the command that asks.
    const before = await stack.cli(alice, ['connections']);
    expect(before.stdout).toMatch(/requestable break-glass .*hoopctl request prod-db --policy break-glass/);
    const beforeJson = JSON.parse(
      (await stack.cli(alice, ['connections', '--json'])).stdout,
    ) as ConnectionView[];
    expect(beforeJson.find((v) => v.name === 'prod-db')!.requestable.map((p) => p.name)).toContain(
      'break-glass',
    );

    // No step below races a clock: "applies" is shown with a grant that outlives the test, "vanishes by
    // itself" with a second, short grant that is only ever checked after it expired. (One 3 s grant used
    // to cover both, and a slow CLI start could eat the whole window before the write ran.)
    const filed = await stack.cli(alice, [
      'request',
      'prod-db',
      '--policy',
      'break-glass',
      '--for',
      '1h',
      '--reason',
      'INC-1: stuck order',
    ]);
    expect(filed.code, filed.stderr).toBe(0);
    const id = filed.stdout.trim();
    expect(id).toMatch(/^access-\d+$/);
    const listed = JSON.parse(
      (await stack.cli(rita, ['approvals', '--json'])).stdout,
    ) as ApprovalListResponse;
    expect(listed.access_requests.map((r) => r.id)).toContain(id);
    expect((await stack.cli(alice, ['approve', id])).code).toBe(4);
    const granted = await stack.cli(rita, ['approve', id]);
    expect(granted.code, granted.stderr).toBe(0);

    // In force: alice's write runs without a statement approval.
    const write = await stack.cli(alice, [
      'exec',
      'prod-db',
      '-c',
      'update orders set total_cents = 2 where id = 10',
      '--no-wait',
    ]);
    expect(write.code, write.stderr).toBe(0);

    // A short grant expires with no action from anyone, and DDL (which only it allowed) needs approval again.
    const brief = await stack.cli(alice, [
      'request',
      'prod-db',
      '--policy',
      'schema-window',
      '--for',
      '1s',
      '--reason',
      'INC-2: add an index',
    ]);
    expect(brief.code, brief.stderr).toBe(0);
    const briefId = brief.stdout.trim();
    expect((await stack.cli(rita, ['approve', briefId])).code).toBe(0);
    await eventually('the short grant to expire', async () => {
      const mine = JSON.parse(
        (await stack.cli(alice, ['requests', '--json'])).stdout,
      ) as AccessRequestListResponse;
      return mine.access_requests.find((r) => r.id === briefId && r.status === 'expired');
    });
    const after = await stack.cli(alice, [
      'exec',
      'prod-db',
      '-c',
      'create index orders_total on orders (total_cents)',
      '--no-wait',
    ]);
    expect(after.code, after.stderr).toBe(5);
    // The long grant is untouched by the short one's end.
    const mine = JSON.parse(
      (await stack.cli(alice, ['requests', '--json'])).stdout,
    ) as AccessRequestListResponse;
    expect(mine.access_requests.find((r) => r.id === id)?.active).toBe(true);
  });

  it('two gateways on one PostgreSQL store: paused on one, approved through the other', async () => {
    const port = await freePort();
    const second = stack.configFile.replace(/\.yaml$/, '-2.yaml');
    writeFileSync(
      second,
      readFileSync(stack.configFile, 'utf8').replace(
        /address: 127\.0\.0\.1:\d+/,
        `address: 127.0.0.1:${port}`,
      ),
    );
    const gateway2 = spawn(process.execPath, [GATEWAY, '--config', second], {
      env: { ...process.env, TEST_DB_PASSWORD: stack.dbPassword },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        let log = '';
        gateway2.stderr!.on('data', (c: Buffer) => {
          log += c.toString('utf8');
          if (log.includes('hoop-gateway listening')) resolve();
        });
        gateway2.once('exit', (code) => reject(new Error(`second gateway exited ${code}: ${log}`)));
      });
      const url2 = stack.gatewayUrl.replace(/:\d+$/, `:${port}`);
      const exec = stack.cli(
        '/nonexistent-home',
        ['exec', 'prod-db', '--gateway', url2, '-c', 'delete from orders where id = 11'],
        {
          env: stack.ciEnv(),
        },
      );
      const request = await pendingFor(rita, 'id = 11');
      // Both approvals through the first gateway; the statement waits on the second.
      expect((await stack.cli(rita, ['approve', request.id])).code).toBe(0);
      expect((await stack.cli(aubrey, ['approve', request.id])).code).toBe(0);
      const result = await exec;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('DELETE 1');
    } finally {
      gateway2.kill('SIGTERM');
    }
  });
});
