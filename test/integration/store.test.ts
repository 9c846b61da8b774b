/** One suite, both store backends: the embedded SQLite file and a PostgreSQL database. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey, rotateSigningKey, type SigningKey } from '../../gateway/audit/checkpoint.js';
import { exportJsonl } from '../../gateway/audit/export.js';
import { AuditWriteError, createAuditLog } from '../../gateway/audit/log.js';
import { purgeExpired } from '../../gateway/audit/retention.js';
import { fileSink, type SinkTarget, startSinks } from '../../gateway/audit/sinks.js';
import { loadTrustedKeys } from '../../gateway/audit/trusted-keys.js';
import { verifyStoredLog } from '../../gateway/audit/verify.js';
import type { ChainWriterHandle } from '../../gateway/store/chain-writer.js';
import { openStore, type StoreConfig } from '../../gateway/store/index.js';
import { SQLITE_FILE } from '../../gateway/store/sqlite.js';
import type { Store } from '../../gateway/store/types.js';
import type { AuditRecord, AuditRecordInput, TrustedKey } from '../../src/shared/audit.js';
import { verifyChain } from '../../src/shared/audit-chain.js';
import { parseExport } from '../../src/shared/audit-export.js';
import type { Identity } from '../../src/shared/identity.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';

const alice: Identity = {
  issuer: 'https://idp.example.com',
  subject: 'alice',
  name: 'alice@example.com',
  groups: ['engineering'],
  kind: 'human',
};

const statement = (session: string, i: number): AuditRecordInput => ({
  type: 'statement',
  identity: alice,
  source: '127.0.0.1:5555',
  connection: 'prod-db',
  session,
  data: { statement_id: `${session}-${i}`, text: `select ${i}`, decision: 'allow', rule: 'reads' },
});

/** An approval request as the approvals service makes it; `changes` override single fields. */
const approvalRequest = (now: string, changes: Partial<Parameters<Store['createApproval']>[0]> = {}) => ({
  requester: alice,
  connection: 'prod-db',
  session: 's1',
  statement: 'delete from orders where id = $1',
  statement_hash: 'abc',
  params: [] as string[],
  rule: 'changes-need-review',
  policy: 'engineers',
  approvers: ['db-reviewers'],
  approvals_required: 1,
  created_at: now,
  expires_at: now,
  ...changes,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Backend {
  name: string;
  /** A fresh, empty store configuration. */
  fresh(): Promise<StoreConfig>;
}

const tempDirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-store-'));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

let pg: PgServer | undefined;
let databases = 0;

const backends: Backend[] = [
  { name: 'sqlite', fresh: async () => ({ path: tempDir() }) },
  {
    name: 'postgres',
    fresh: async () => {
      pg ??= await startPostgres();
      const db = `hoop_store_${++databases}`;
      pg.psql(`CREATE DATABASE ${db}`);
      return { url: pg.url(db) };
    },
  },
];

afterAll(() => pg?.stop());

describe.each(backends)('store: $name', (backend) => {
  let config: StoreConfig;
  let store: Store;
  let key: SigningKey;
  let dataDir: string;
  const open = () => openStore(config, { dataDir });
  const trustedKeys = (): TrustedKey[] => loadTrustedKeys({ signingKey: key, dataDir: store.dataDir });
  const newLog = (s: Store, every = 100, replica = 'main') =>
    createAuditLog(s, {
      signingKey: key,
      checkpoint: { every, intervalMs: 0 },
      replica,
      trustedKeys: trustedKeys(),
    });
  const verify = (s: Store, log: { seal(): Promise<unknown> } | undefined) =>
    verifyStoredLog(s, log, { trustedKeys: trustedKeys() });

  beforeAll(async () => {
    config = await backend.fresh();
    dataDir = 'path' in config ? config.path : tempDir();
    store = await open();
    key = loadOrCreateSigningKey({ dataDir: store.dataDir });
  });
  afterAll(() => store?.close());

  it('migrates once, and again is a no-op', async () => {
    const again = await open();
    await again.close();
    expect(await store.chainHead('main')).toEqual({ seq: 0, hash: '0'.repeat(64) });
  });

  it('group-commits 2,000 concurrent appends into one valid chain', async () => {
    let batches = 0;
    const counting: Store = Object.create(store);
    counting.openChainWriter = (options) => {
      const writer = store.openChainWriter(options);
      return {
        submit: (entries: (string | null)[]) => {
          batches++;
          return writer.submit(entries);
        },
        close: () => writer.close(),
      } as unknown as ChainWriterHandle;
    };
    const log = await newLog(counting);
    const records = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => log.append(statement('s-load', i))),
    );
    expect(new Set(records.map((r) => r.seq)).size).toBe(2000);
    expect(batches).toBeLessThan(200);
    expect(await verify(store, log)).toMatchObject({ ok: true, count: 2000 });
    await log.close();
  });

  it('gives each of two replicas appending at once its own chain, and verifies both', async () => {
    const other = await open();
    const a = await newLog(store, 50, 'gw-a');
    const b = await newLog(other, 50, 'gw-b');
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).append(statement(i % 2 ? 's-a' : 's-b', i))),
    );
    // Interleave batches in time, too.
    for (let round = 0; round < 10; round++) {
      await Promise.all([a.append(statement('s-a', round)), b.append(statement('s-b', round))]);
    }
    expect(await store.chainHead('gw-a')).toMatchObject({ seq: 160 });
    expect(await store.chainHead('gw-b')).toMatchObject({ seq: 160 });
    await b.seal();
    const result = await verify(store, a);
    expect(result).toMatchObject({ ok: true });
    expect(result.ok && result.chains.filter((c) => c.chain.startsWith('gw-'))).toMatchObject([
      { chain: 'gw-a', count: 160, covered_through: 160 },
      { chain: 'gw-b', count: 160, covered_through: 160 },
    ]);
    await a.close();
    await b.close();
    await other.close();
  });

  it('resolves an append only once it is committed, readable by another connection', async () => {
    const log = await newLog(store);
    const record = await log.append(statement('s-durable', 1));
    const reader = await open();
    const [read] = await reader.listRecords({ chain: 'main', afterSeq: record.seq - 1, limit: 1 });
    expect(read).toEqual(record);
    await reader.close();
    await log.close();
  });

  it('summarises sessions and returns their records in order', async () => {
    const log = await newLog(store);
    await log.append({
      type: 'session.started',
      identity: alice,
      source: '10.0.0.1:1',
      connection: 'c2',
      session: 'sx',
      data: {},
    });
    await log.append({ ...statement('sx', 1), connection: 'c2' });
    await log.append({
      type: 'policy.blocked',
      identity: alice,
      connection: 'c2',
      session: 'sx',
      data: { rule: 'no-admin' },
    });
    await log.append({ type: 'session.ended', identity: alice, connection: 'c2', session: 'sx', data: {} });
    const [summary] = await store.listSessions({
      connection: 'c2',
      subject: 'alice',
      since: new Date(Date.now() - 60_000).toISOString(),
    });
    expect(summary).toMatchObject({
      id: 'sx',
      connection: 'c2',
      source: '10.0.0.1:1',
      statements: 1,
      denied: 1,
    });
    expect(summary!.identity?.subject).toBe('alice');
    expect(summary!.ended).toBeTruthy();
    expect(await store.listSessions({ connection: 'c2', until: '2000-01-01T00:00:00Z' })).toEqual([]);
    const records = await store.listRecords({ session: 'sx' });
    expect(records.map((r) => r.type)).toEqual([
      'session.started',
      'statement',
      'policy.blocked',
      'session.ended',
    ]);
    await log.close();
  });

  it('exports jsonl that verifies offline, whole or for a window, and catches an edit', async () => {
    const log = await newLog(store);
    const midpoint = (await log.append(statement('s-export', 0))).time;
    for (let i = 1; i < 30; i++) await log.append(statement('s-export', i));
    const collect = async (window: { since?: string }) => {
      let text = '';
      for await (const chunk of exportJsonl(store, log, window)) text += chunk;
      return text;
    };
    const whole = parseExport(await collect({}));
    expect(whole.header?.format).toBe('hoop-audit-export');
    const pinned = { trustedKeys: trustedKeys() };
    const wholeResult = verifyChain(whole.records, whole.checkpoints, {
      ...pinned,
      complete: whole.header?.complete,
    });
    expect(wholeResult).toMatchObject({ ok: true });
    expect(wholeResult.ok && wholeResult.chains.find((c) => c.chain === 'main')).toMatchObject({
      first_seq: 1,
    });
    const window = parseExport(await collect({ since: midpoint }));
    const result = verifyChain(window.records, window.checkpoints, { ...pinned, complete: false });
    expect(result).toMatchObject({ ok: true });
    expect(window.records.filter((r) => r.chain === 'main')[0]!.seq).toBeGreaterThan(1);
    // The keys inside the file are not trusted by themselves.
    expect(verifyChain(whole.records, whole.checkpoints, { trustedKeys: [] })).toMatchObject({ ok: false });
    const text = await collect({});
    const edited = text.replace('select 7"', 'select 8"');
    expect(edited).not.toBe(text);
    const tampered = parseExport(edited);
    expect(verifyChain(tampered.records, tampered.checkpoints, pinned)).toMatchObject({ ok: false });
    await log.close();
  });

  it('keeps old public keys after rotation, so old checkpoints still verify', async () => {
    const log = await newLog(store);
    await log.append(statement('s-rotate', 1));
    await log.seal();
    await log.close();
    if ('path' in config) {
      const fresh = await rotateSigningKey(store, store.dataDir);
      expect(fresh.keyId).not.toBe(key.keyId);
      key = fresh;
    } else {
      // PostgreSQL replicas keep their keys outside the store: rotate the one in dataDir.
      key = await rotateSigningKey(store, store.dataDir);
    }
    const next = await newLog(store);
    await next.append(statement('s-rotate', 2));
    const keys = await store.listSigningKeys();
    expect(keys.filter((k) => k.retired_at).length).toBeGreaterThanOrEqual(1);
    // The retired public key stays trusted from the data directory (not from the store).
    expect(trustedKeys().length).toBeGreaterThanOrEqual(2);
    expect(await verify(store, next)).toMatchObject({ ok: true });
    await next.close();
  });

  it('purges by retention at a checkpoint, records the purge, and still verifies', async () => {
    const log = await newLog(store, 1_000_000);
    await log.append(statement('s-old', 1));
    const anchor = (await log.seal())!;
    await sleep(20);
    await log.append(statement('s-new', 1));
    await log.seal();
    const cutoff = Date.parse(anchor.time) + 5;
    const purges = await purgeExpired(store, log, { days: 1, now: cutoff + 86_400_000 });
    expect(purges.find((p) => p.chain === 'main')?.throughSeq).toBe(anchor.seq);
    const [first] = await store.listRecords({ chain: 'main', limit: 1 });
    expect(first!.seq).toBe(anchor.seq + 1);
    const [last] = await store.listRecords({ chain: 'main', limit: 1, descending: true });
    expect(last).toMatchObject({
      type: 'retention.purged',
      data: { chain: 'main', through_seq: anchor.seq },
    });
    const result = await verify(store, log);
    expect(result).toMatchObject({ ok: true });
    expect(result.ok && result.chains.find((c) => c.chain === 'main')).toMatchObject({
      first_seq: anchor.seq + 1,
    });
    await log.close();
  });

  it('feeds sinks from the store: a sink that is down catches up without blocking appends', async () => {
    const log = await newLog(store);
    const path = join(tempDir(), 'audit.jsonl');
    let failuresLeft = 3;
    const received: AuditRecord[] = [];
    const flaky: SinkTarget = {
      name: `flaky-${backend.name}`,
      async deliver(records) {
        if (failuresLeft-- > 0) throw new Error('SIEM down');
        received.push(...records);
      },
    };
    const runner = startSinks(store, log, [fileSink(path), flaky], { backoffMs: 10, pollMs: 20 });
    const started = Date.now();
    for (let i = 0; i < 20; i++) await log.append(statement('s-sink', i));
    expect(Date.now() - started).toBeLessThan(5000);
    await log.seal();
    await runner.caughtUp();
    await runner.stop();
    const head = log.head().seq;
    const parsed = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRecord & { checkpoint?: unknown });
    const lines = parsed.filter((l) => !l.checkpoint);
    expect(lines.at(-1)!.seq).toBe(head);
    expect(new Set(lines.map((r) => r.seq)).size).toBe(lines.length);
    // The file is a witness too: it holds the checkpoints.
    expect(parsed.some((l) => l.checkpoint)).toBe(true);
    expect(received.at(-1)!.seq).toBe(head);
    const delivered = new Set(received.map((r) => r.seq));
    const all = await store.listRecords({ chain: 'main', afterSeq: 0, limit: 100_000 });
    expect(all.every((r) => delivered.has(r.seq))).toBe(true);
    await log.close();
  });

  it('creates, reads, lists and updates approvals, identities and grants', async () => {
    const now = new Date().toISOString();
    const approval = await store.createApproval(approvalRequest(now, { params: ['42'] }));
    expect(approval).toMatchObject({ status: 'pending', decisions: [], params: ['42'], requester: alice });
    const decided = await store.updateApproval(approval.id, {
      status: 'approved',
      decided_at: now,
      decisions: [{ subject: 'bob', issuer: alice.issuer, decision: 'approve', time: now }],
    });
    expect(decided).toMatchObject({ status: 'approved', decided_at: now });
    expect(decided!.decisions).toHaveLength(1);
    expect(await store.getApproval(approval.id)).toEqual(decided);
    expect((await store.listApprovals({ status: 'approved' })).map((a) => a.id)).toEqual([approval.id]);
    expect(await store.listApprovals({ status: 'pending' })).toEqual([]);
    expect(await store.getApproval(999_999)).toBeUndefined();

    const seen = await store.recordIdentitySeen(alice, now);
    expect(seen).toMatchObject({
      subject: 'alice',
      groups: ['engineering'],
      first_seen: now,
      last_seen: now,
    });
    const later = new Date(Date.now() + 1000).toISOString();
    const again = await store.recordIdentitySeen({ ...alice, groups: ['engineering', 'audit'] }, later);
    expect(again).toMatchObject({ first_seen: now, last_seen: later, groups: ['engineering', 'audit'] });
    expect(await store.setIdentityRevoked(alice.issuer, 'alice', { at: later, reason: 'left' })).toBe(true);
    expect(await store.getIdentity(alice.issuer, 'alice')).toMatchObject({ revoked_reason: 'left' });
    await store.setIdentityRevoked(alice.issuer, 'alice', null);
    expect((await store.getIdentity(alice.issuer, 'alice'))?.revoked_at).toBeUndefined();
    expect(await store.listIdentities()).toHaveLength(1);

    const grant = await store.createGrant({
      issuer: alice.issuer,
      subject: 'alice',
      connection: 'prod-db',
      policy: 'break-glass',
      reason: 'incident 7',
      duration_ms: 3_600_000,
      created_at: now,
    });
    expect(grant).toMatchObject({ status: 'pending', duration_ms: 3_600_000 });
    const approved = await store.updateGrant(grant.id, {
      status: 'approved',
      approved_at: now,
      expires_at: later,
      approved_by: 'bob',
    });
    expect(approved).toMatchObject({ status: 'approved', expires_at: later, approved_by: 'bob' });
    expect(await store.listGrants({ subject: 'alice', status: 'approved' })).toHaveLength(1);
    expect(await store.listGrants({ subject: 'carol' })).toEqual([]);
  });

  it('interleaves other writes with a stream of appends (SQLite: the writer thread and the main connection take turns)', async () => {
    const cfg = await backend.fresh();
    const own = await openStore(cfg, { dataDir: 'path' in cfg ? cfg.path : tempDir() });
    const log = await createAuditLog(own, { signingKey: key, checkpoint: { every: 100, intervalMs: 0 } });
    const now = new Date().toISOString();
    const appends = Array.from({ length: 600 }, (_, i) => log.append(statement(`s-mixed-${i % 7}`, i)));
    const writes = Array.from({ length: 40 }, async (_, i) => {
      const a = await own.createApproval(
        approvalRequest(now, {
          session: `s-mixed-${i}`,
          statement: `delete from orders where id = ${i}`,
          statement_hash: `h${i}`,
        }),
      );
      return own.updateApproval(a.id, { status: 'rejected', decided_at: now });
    });
    const [records, updated] = await Promise.all([Promise.all(appends), Promise.all(writes)]);
    expect(new Set(records.map((r) => r.seq)).size).toBe(600);
    expect(updated.every((a) => a?.status === 'rejected')).toBe(true);
    expect(await own.listApprovals({ status: 'rejected' })).toHaveLength(40);
    expect(await verify(own, log)).toMatchObject({ ok: true, count: 600 });
    await log.close();
    await own.close();
  });

  it.runIf(backend.name === 'sqlite')(
    'waits out another connection holding the write lock without stopping the event loop',
    async () => {
      const own = await openStore(await backend.fresh(), { dataDir: tempDir() });
      const log = await newLog(own);
      const holder = new Database(join(own.dataDir, SQLITE_FILE));
      holder.exec('BEGIN IMMEDIATE');
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const appended = log.append(statement('s-locked', 1));
      await new Promise((r) => setTimeout(r, 300));
      holder.exec('ROLLBACK');
      holder.close();
      const record = await appended;
      clearInterval(ticker);
      // The commit was retried on a timer: timers kept firing while the lock was held.
      expect(ticks).toBeGreaterThan(5);
      expect(record.seq).toBeGreaterThan(0);
      expect(await verify(own, log)).toMatchObject({ ok: true });
      await log.close();
      await own.close();
    },
  );

  it('fails closed: when the store cannot write, append rejects', async () => {
    const doomed = await open();
    const log = await newLog(doomed);
    await log.append(statement('s-fail', 1));
    await doomed.close();
    await expect(log.append(statement('s-fail', 2))).rejects.toBeInstanceOf(AuditWriteError);
    await expect(log.append(statement('s-fail', 3))).rejects.toThrow(/audit log cannot be written/);
  });
});
