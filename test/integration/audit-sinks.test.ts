/**
 * Streaming to a SIEM from a real gateway: the JSON-lines file sink configured in gateway.yaml receives
 * the records of a real psql session, and a webhook sink that is down blocks no statement and catches up
 * (signed) when it comes back. The same gateway runs with audit.fail_open: loudly announced, on the
 * record, and a statement runs while the store cannot be written.
 */
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import Database from 'libsql';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/shared/audit.js';
import { canonicalJson, trustedKeyOf, verifyChain } from '../../src/shared/audit-chain.js';
import { readWitness } from '../../src/shared/audit-export.js';
import { freePort } from '../harness/ports.js';
import { type Stack, startStack } from '../harness/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SECRET = 'siem-shared-secret';

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (value) return value;
    await sleep(100);
  }
  throw new Error(`gave up waiting for ${what}`);
}

describe('audit sinks on a real gateway (and fail_open)', () => {
  let stack: Stack;
  let alice: string;
  let hookPort: number;
  let hook: Server | undefined;
  const received: AuditRecord[] = [];
  let badSignatures = 0;

  beforeAll(async () => {
    hookPort = await freePort();
    process.env.HOOP_TEST_WEBHOOK_SECRET = SECRET;
    stack = await startStack({
      extraConfig: `audit:
  fail_open: true
  sinks:
    - { type: file, path: ./siem/audit.jsonl }
    - { type: webhook, url: "http://127.0.0.1:${hookPort}/hook", secret_env: HOOP_TEST_WEBHOOK_SECRET }
`,
    });
    alice = await stack.login('alice@example.com');
  }, 120_000);
  afterAll(async () => {
    hook?.close();
    await stack?.stop();
  });

  const sinkFile = () => join(stack.configFile, '..', 'siem', 'audit.jsonl');
  /** The file sink's lines: records, and the checkpoints it witnesses as {"checkpoint":…} lines. */
  const fileLines = (): string[] =>
    existsSync(sinkFile()) ? readFileSync(sinkFile(), 'utf8').trim().split('\n').filter(Boolean) : [];
  const fileRecords = (): AuditRecord[] =>
    fileLines()
      .filter((l) => !l.startsWith('{"checkpoint":'))
      .map((l) => JSON.parse(l) as AuditRecord);

  it('announces fail_open loudly at start and records it', async () => {
    expect(stack.gatewayLog()).toMatch(/WARNING: audit\.fail_open is on/);
    const started = await until(
      () => fileRecords().find((r) => r.type === 'gateway.started'),
      'gateway.started in the file sink',
    );
    expect(started.data).toMatchObject({ fail_open: true });
  });

  it('a session reaches the file sink; the webhook is down and blocks nothing, then catches up', async () => {
    const tunnel = await stack.connect(alice);
    let session: string | undefined;
    try {
      // The webhook is down (nothing listens on its port): statements run all the same.
      const result = spawnSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', tunnel.url], {
        encoding: 'utf8',
        timeout: 30_000,
        input: "select 'to-the-siem';\nselect count(*) from customers;\n",
      });
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('to-the-siem');
    } finally {
      tunnel.stop();
    }
    const statement = await until(
      () => fileRecords().find((r) => r.type === 'statement' && String(r.data.text).includes('to-the-siem')),
      'the statement in the file sink',
    );
    session = statement.session;
    await until(
      () => fileRecords().find((r) => r.type === 'session.ended' && r.session === session),
      'session.ended in the file sink',
    );
    expect(received).toEqual([]);

    // The file holds this replica's chain from seq 1, each record as the store keeps it (canonical,
    // re-hashable), and the checkpoints: it verifies on its own with the gateway's public key pinned.
    const lines = fileLines().filter((l) => !l.startsWith('{"checkpoint":'));
    const records = fileRecords();
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    for (const [i, r] of records.entries()) expect(lines[i]).toBe(canonicalJson(r));
    const witnessed = await readWitness(fileLines());
    const key = readFileSync(join(stack.configFile, '..', 'hoop-data', 'audit-signing-key.pub.pem'), 'utf8');
    expect(
      verifyChain(records, witnessed, { trustedKeys: [trustedKeyOf(key)], maxUnsealedMs: 3_600_000 }),
    ).toMatchObject({ ok: true });

    // The SIEM comes back: the webhook sink catches up from its cursor, signed with the shared secret.
    hook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
        if (req.headers['x-hoop-signature'] !== expected) badSignatures++;
        received.push(...((JSON.parse(body) as { records?: AuditRecord[] }).records ?? []));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook!.listen(hookPort, '127.0.0.1', r));
    await until(
      () => received.find((r) => r.type === 'session.ended' && r.session === session),
      'the webhook to catch up',
    );
    expect(badSignatures).toBe(0);
    const seqs = new Set(received.map((r) => r.seq));
    for (const r of fileRecords().filter((f) => f.seq <= Math.max(...seqs)))
      expect(seqs.has(r.seq)).toBe(true);
  }, 120_000);

  it('fail_open: while the store cannot be written, the statement still runs (and the failure is logged)', async () => {
    const tunnel = await stack.connect(alice);
    const client = new pg.Client({ connectionString: tunnel.url });
    await client.connect();
    try {
      await client.query('select 1');
      const holder = new Database(join(stack.configFile, '..', 'hoop-data', 'hoop.db'));
      // The gateway may be committing the last statement's result record: wait for the lock like any writer.
      holder.exec('PRAGMA busy_timeout = 10000');
      holder.exec('BEGIN IMMEDIATE');
      try {
        const result = await client.query("select 'ran-unrecorded' as x");
        expect(result.rows).toEqual([{ x: 'ran-unrecorded' }]);
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
    } finally {
      await client.end().catch(() => undefined);
      tunnel.stop();
    }
    expect(stack.gatewayLog()).toMatch(/audit append failed/);
  }, 60_000);
});
