/**
 * The log encodes each record once (gateway/audit/log.ts encodeRecord): the text it stores must be byte
 * for byte the canonical JSON of the record, and the hash the one the verifier recomputes.
 */
import { describe, expect, it } from 'vitest';
import { createAuditLog, encodeInput, encodeRecord } from '../../../gateway/audit/log.js';
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

describe('encodeRecord (one encoding per record)', () => {
  it('stores exactly canonicalJson(record) and hashes what the verifier recomputes, for 2,000 random records', () => {
    const next = rng(42);
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 2000; seq++) {
      const input = randomInput(next);
      const time = '2026-11-23T10:40:00.123456Z';
      const { record, text } = encodeRecord(input, encodeInput(input), seq, time, prev);
      const parsed = JSON.parse(text) as AuditRecord;
      expect(text).toBe(canonicalJson(parsed));
      expect(canonicalJson(record)).toBe(text);
      expect(record.prev).toBe(prev);
      expect(recordHash(prev, recordContent(parsed))).toBe(record.hash);
      prev = record.hash;
    }
  });

  it('refuses values canonical JSON cannot carry', () => {
    const input: AuditRecordInput = { type: 'statement', data: { rows: Number.NaN } };
    expect(() => encodeInput(input)).toThrow(/NaN/);
  });
});

describe('statement outcomes ride along with the next commit', () => {
  function countingStore() {
    let head = { seq: 0, hash: GENESIS_HASH };
    const commits: string[][] = [];
    const store = {
      dataDir: '/nonexistent',
      async appendBatch(build: (h: typeof head) => { record: AuditRecord; text: string }[]) {
        const encoded = build(head);
        const last = encoded.at(-1)?.record;
        if (last) head = { seq: last.seq, hash: last.hash };
        commits.push(encoded.map((e) => e.record.type));
        return encoded.map((e) => e.record);
      },
    };
    return { store: store as unknown as Store, commits };
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
    const { store, commits } = countingStore();
    const log = await createAuditLog(store, { lazyMs: 60_000 });
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
    const { store, commits } = countingStore();
    const log = await createAuditLog(store, { lazyMs: 5 });
    await log.append(statement(1));
    const outcome = await log.append(result(1)); // resolves once the timer's commit is done
    expect(outcome.seq).toBe(2);
    const closing = await createAuditLog(store, { lazyMs: 60_000 });
    const late = closing.append(result(2));
    await closing.close();
    expect((await late).seq).toBe(3);
    expect(commits).toEqual([['statement'], ['statement.result'], ['statement.result']]);
    await log.close();
  });
});
