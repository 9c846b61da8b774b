import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type SigningKey, signCheckpoint } from '../../../gateway/audit/checkpoint.js';
import type { AuditRecord, Checkpoint, SigningPublicKey } from '../../../src/shared/audit.js';
import { GENESIS_HASH } from '../../../src/shared/audit.js';
import {
  canonicalJson,
  keyIdOf,
  recordContent,
  recordHash,
  verifyChain,
} from '../../../src/shared/audit-chain.js';

function makeKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}
const publicOf = (key: SigningKey, retired_at?: string): SigningPublicKey => ({
  key_id: key.keyId,
  public_key: key.publicKeyPem,
  created_at: '2026-01-01T00:00:00.000Z',
  retired_at,
});

/** Seeded PRNG (mulberry32) so a failing tampering can be replayed. */
function rng(seed: number) {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

/** Re-link records[from..] onto their predecessors, as a forger without the key would. */
function rehashFrom(records: AuditRecord[], from: number): void {
  for (let i = from; i < records.length; i++) {
    const prev = i === 0 ? GENESIS_HASH : records[i - 1]!.hash;
    records[i] = { ...records[i]!, prev, hash: recordHash(prev, recordContent(records[i]!)) };
  }
}

const TYPES = [
  'session.started',
  'statement',
  'statement.result',
  'policy.blocked',
  'session.ended',
] as const;

function buildLog(count: number, key: SigningKey, every: number) {
  const records: AuditRecord[] = [];
  const checkpoints: Checkpoint[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const content = {
      seq,
      time: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString().replace('Z', '123Z'),
      type: TYPES[seq % TYPES.length]!,
      identity: {
        issuer: 'https://idp.example.com',
        subject: `user-${seq % 3}`,
        groups: ['engineering'],
        kind: 'human' as const,
      },
      source: '127.0.0.1:5000',
      connection: 'prod-db',
      session: `s-${Math.floor(seq / 7)}`,
      data: { text: `select ${seq}`, decision: seq % 5 === 0 ? 'deny' : 'allow', rows: seq },
    };
    const record: AuditRecord = { ...content, prev, hash: recordHash(prev, content) };
    records.push(record);
    prev = record.hash;
    if (seq % every === 0 || seq === count) checkpoints.push(signCheckpoint(key, record, content.time));
  }
  return { records, checkpoints };
}

describe('canonical encoding', () => {
  it('sorts keys at every depth and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });
  it('drops undefined members, writes undefined in arrays as null', () => {
    expect(canonicalJson({ a: undefined, b: null, c: [undefined, 1] })).toBe('{"b":null,"c":[null,1]}');
  });
  it('is independent of insertion order and escapes like JSON', () => {
    expect(canonicalJson({ é: 'ü"\n', a: true })).toBe(canonicalJson({ a: true, é: 'ü"\n' }));
    expect(canonicalJson('a"b')).toBe('"a\\"b"');
  });
  it('refuses what JSON cannot carry', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow();
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow();
    expect(() => canonicalJson({ f: 1n })).toThrow();
  });
  it('round-trips through JSON.parse to the same bytes', () => {
    const value = { z: [1.5, -0.25, 'x'], a: { nested: { deep: null } }, n: 1e21 };
    expect(canonicalJson(JSON.parse(canonicalJson(value)))).toBe(canonicalJson(value));
  });
  it('hashes prev followed by the content', () => {
    const content = { seq: 1, time: 't', type: 'statement' as const, data: {} };
    expect(recordHash(GENESIS_HASH, content)).toMatch(/^[0-9a-f]{64}$/);
    expect(recordHash(GENESIS_HASH, content)).not.toBe(recordHash('1'.repeat(64), content));
  });
});

describe('verifyChain', () => {
  const key = makeKey();
  const keys = [publicOf(key)];

  it('accepts an intact log', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    expect(verifyChain(records, checkpoints, keys)).toEqual({
      ok: true,
      count: 50,
      first_seq: 1,
      last_seq: 50,
      checkpoints: 5,
    });
  });

  it('accepts a log purged up to a signed checkpoint (the anchor)', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    const result = verifyChain(
      records.slice(20),
      checkpoints.filter((c) => c.seq >= 20),
      keys,
    );
    expect(result).toMatchObject({ ok: true, count: 30, first_seq: 21 });
  });

  it('refuses a purge that is not anchored', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    expect(verifyChain(records.slice(15), checkpoints, keys)).toMatchObject({ ok: false, seq: 16 });
  });

  it('refuses an unsealed tail unless asked not to', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    const unsealed = checkpoints.filter((c) => c.seq <= 40);
    expect(verifyChain(records.slice(0, 45), unsealed, keys)).toMatchObject({ ok: false, seq: 41 });
    expect(verifyChain(records.slice(0, 45), unsealed, keys, { requireSealedTail: false })).toMatchObject({
      ok: true,
    });
  });

  it('refuses checkpoints by a retired key made after its retirement', () => {
    const { records, checkpoints } = buildLog(20, key, 10);
    const retired = [publicOf(key, '2026-01-01T00:00:15.000Z')];
    expect(verifyChain(records, checkpoints, retired)).toMatchObject({ ok: false, seq: 20 });
  });

  it('detects 1,000 random tamperings', () => {
    const random = rng(20_260_101);
    const forger = makeKey();
    const kinds = [
      'edit',
      'delete',
      'reorder',
      'insert',
      'truncate',
      'rehash',
      'rehash-forged-checkpoints',
    ] as const;
    const tally: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const { records, checkpoints } = buildLog(60, key, 10);
      const kind = kinds[random.int(kinds.length)]!;
      tally[kind] = (tally[kind] ?? 0) + 1;
      let cps = checkpoints;
      const at = random.int(records.length);
      switch (kind) {
        case 'edit': {
          const r = structuredClone(records[at]!) as AuditRecord & { data: Record<string, unknown> };
          const field = random.int(8);
          if (field === 0) r.data.text = `${String(r.data.text)} or 1=1`;
          else if (field === 1) r.time = r.time.replace(/\d{3}Z$/, '999Z');
          else if (field === 2) r.type = r.type === 'statement' ? 'session.ended' : 'statement';
          else if (field === 3) r.identity!.subject = 'someone-else';
          else if (field === 4) r.data.decision = r.data.decision === 'deny' ? 'allow' : 'deny';
          else if (field === 5) delete r.data.rows;
          else if (field === 6) r.hash = recordHash(r.prev, { ...recordContent(r), session: 'forged' });
          else r.prev = '0'.repeat(63) + '1';
          records[at] = r;
          break;
        }
        case 'delete':
          records.splice(at, 1);
          break;
        case 'reorder': {
          const other = (at + 1 + random.int(records.length - 1)) % records.length;
          [records[at], records[other]] = [records[other]!, records[at]!];
          break;
        }
        case 'insert': {
          // A well-formed record chained onto its predecessor, slipped in.
          const before = records[at]!;
          const content = {
            ...recordContent(before),
            seq: before.seq + 1,
            data: { text: 'drop table audit' },
          };
          records.splice(at + 1, 0, {
            ...content,
            prev: before.hash,
            hash: recordHash(before.hash, content),
          });
          break;
        }
        case 'truncate':
          records.splice(records.length - 1 - random.int(records.length - 1));
          break;
        case 'rehash':
        case 'rehash-forged-checkpoints': {
          (records[at]!.data as Record<string, unknown>).rows = 0;
          rehashFrom(records, at);
          if (kind === 'rehash-forged-checkpoints') {
            // Re-sign every checkpoint with a key the verifier does not trust.
            cps = checkpoints.map((cp) => signCheckpoint(forger, records[cp.seq - 1]!, cp.time));
          }
          break;
        }
      }
      const result = verifyChain(records, cps, keys);
      if (result.ok) throw new Error(`tampering #${i} (${kind} at ${at}) was not detected`);
      expect(result.seq).toBeGreaterThan(0);
      expect(result.reason).toBeTruthy();
    }
    for (const kind of kinds) expect(tally[kind]).toBeGreaterThan(100);
  });
});
