/**
 * The log encodes each record's members once on the main thread and the writer thread assembles the
 * record (store/chain-writer.ts): the text it stores must be byte for byte the canonical JSON of the
 * record, and the hash the one the verifier recomputes. Through a real (temporary) SQLite store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../../gateway/audit/log.js';
import type { ChainWriterHandle } from '../../../gateway/store/chain-writer.js';
import { openStore } from '../../../gateway/store/index.js';
import type { Store } from '../../../gateway/store/types.js';
import type { AuditRecord, AuditRecordInput } from '../../../src/shared/audit.js';
import { GENESIS_HASH, RECORD_TYPES } from '../../../src/shared/audit.js';
import { canonicalJson, recordContent, recordHash } from '../../../src/shared/audit-chain.js';

function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', 'select 1', 'naïve "quoted" \\ back\nslash', '😀 \u2028 \u0000', 'prod-db', 'ü'];

function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 2 ? 5 : 8));
  switch (pick) {
    case 0:
      return STRINGS[Math.floor(next() * STRINGS.length)];
    case 1:
      return Math.floor(next() * 1e9) - 5e8;
    case 2:
      return next() < 0.5;
    case 3:
      return null;
    case 4:
      return undefined;
    case 5:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(next() * 5); i++) {
        object[STRINGS[Math.floor(next() * STRINGS.length)]! + String(i)] = randomValue(next, depth + 1);
      }
      return object;
    }
  }
}

function randomInput(next: () => number): AuditRecordInput {
  const maybe = <T>(v: T) => (next() < 0.5 ? v : undefined);
  return {
    type: RECORD_TYPES[Math.floor(next() * RECORD_TYPES.length)]!,
    identity: maybe({
      issuer: 'https://idp.example.com',
      subject: 'alice',
      name: maybe('Alice "A"'),
      groups: ['engineering', 'ü'],
      clientId: maybe('hoopctl'),
      kind: 'human' as const,
    }),
    source: maybe('127.0.0.1:5000'),
    connection: maybe('prod-db'),
    session: maybe('7f3c2a'),
    data: {
      text: STRINGS[Math.floor(next() * STRINGS.length)],
      nested: randomValue(next, 1),
      gone: undefined,
    },
  };
}

let dir: string;
let store: Store;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hoop-encode-'));
  store = await openStore({ path: dir });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the writer thread encodes records as the verifier does', () => {
  it('stores exactly canonicalJson(record) and hashes what the verifier recomputes, for 2,000 random records', async () => {
    const next = rng(42);
    const log = await createAuditLog(store, { replica: 'encode' });
    const inputs = Array.from({ length: 2000 }, () => randomInput(next));
    const appended = await Promise.all(inputs.map((input) => log.append(input)));
    await log.close();
    const stored: AuditRecord[] = [];
    for (let after = 0; stored.length < 2000; after = stored.at(-1)!.seq) {
      stored.push(...(await store.listRecords({ chain: 'encode', afterSeq: after, limit: 1000 })));
    }
    let prev = GENESIS_HASH;
    for (const [i, record] of stored.entries()) {
      expect(record.seq).toBe(i + 1);
      expect(record.prev).toBe(prev);
      expect(recordHash(prev, recordContent(record))).toBe(record.hash);
      // What append handed back is what was stored, member for member.
      expect(canonicalJson(appended[i])).toBe(canonicalJson(record));
      prev = record.hash;
    }
  });

  it('refuses values canonical JSON cannot carry, to the caller, at once', async () => {
    const log = await createAuditLog(store, { replica: 'encode-refuse' });
    expect(() => log.enqueue({ type: 'statement', data: { rows: Number.NaN } })).toThrow(/NaN/);
    expect(() => log.enqueue({ type: 'no.such.type' as 'statement', data: {} })).toThrow(
      /unknown audit record type/,
    );
    await log.close();
  });
});

describe('statement outcomes ride along with the next commit', () => {
  /** The real store, with the writer's batches noted (their record types, in order). */
  function countingStore() {
    const commits: string[][] = [];
    const counting: Store = Object.create(store);
    counting.openChainWriter = (options) => {
      const writer = store.openChainWriter(options);
      return {
        submit(entries: (string | null)[]) {
          commits.push(entries.filter((_, i) => i % 8 === 0) as string[]);
          return writer.submit(entries);
        },
        close: () => writer.close(),
      } as unknown as ChainWriterHandle;
    };
    return { store: counting, commits };
  }
  const statement = (i: number): AuditRecordInput => ({
    type: 'statement',
    session: 's',
    data: { statement_id: String(i) },
  });
  const result = (i: number): AuditRecordInput => ({
    type: 'statement.result',
    session: 's',
    data: { statement_id: String(i) },
  });

  it('a session of statements costs one commit per statement, not two, and keeps the order', async () => {
    const { store: counting, commits } = countingStore();
    const log = await createAuditLog(counting, { lazyMs: 60_000, replica: 'ride-along' });
    const written: Promise<AuditRecord>[] = [];
    for (let i = 1; i <= 5; i++) {
      written.push(log.append(statement(i)));
      await written.at(-1); // write-ahead: durable before the statement runs
      written.push(log.append(result(i))); // its outcome: nobody waits
    }
    written.push(log.append({ type: 'session.ended', session: 's', data: {} }));
    const records = await Promise.all(written);
    expect(commits).toEqual([
      ['statement'],
      ['statement.result', 'statement'],
      ['statement.result', 'statement'],
      ['statement.result', 'statement'],
      ['statement.result', 'statement'],
      ['statement.result', 'session.ended'],
    ]);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    await log.close();
  });

  it('an outcome with nothing after it is written by the timer, or at close', async () => {
    const { store: counting, commits } = countingStore();
    const log = await createAuditLog(counting, { lazyMs: 5, replica: 'timer' });
    await log.append(statement(1));
    const outcome = await log.append(result(1)); // resolves once the timer's commit is done
    expect(outcome.seq).toBe(2);
    await log.close();
    const closing = await createAuditLog(counting, { lazyMs: 60_000, replica: 'timer' });
    const late = closing.append(result(2));
    await closing.close();
    expect((await late).seq).toBe(3);
    expect(commits).toEqual([['statement'], ['statement.result'], ['statement.result']]);
  });

  it('enqueue gives LSNs at once; whenDurable calls back in LSN order, at once for what is already durable', async () => {
    const log = await createAuditLog(store, { replica: 'lsn' });
    const lsns = Array.from({ length: 50 }, (_, i) => log.enqueue(statement(i)));
    expect(lsns).toEqual(lsns.map((_, i) => lsns[0]! + i));
    const order: number[] = [];
    await new Promise<void>((resolve) => {
      for (const lsn of [...lsns].reverse())
        log.whenDurable(lsn, (err) => {
          expect(err).toBeUndefined();
          order.push(lsn);
          if (order.length === lsns.length) resolve();
        });
    });
    expect(order).toEqual(lsns);
    expect(log.durableLsn).toBeGreaterThanOrEqual(lsns.at(-1)!);
    let sync = false;
    log.whenDurable(lsns[0]!, () => {
      sync = true;
    });
    expect(sync).toBe(true);
    await log.close();
  });
});
