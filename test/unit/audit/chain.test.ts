import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type SigningKey, signCheckpoint } from '../../../gateway/audit/checkpoint.js';
import type { AuditRecord, Checkpoint, TrustedKey } from '../../../src/shared/audit.js';
import { GENESIS_HASH } from '../../../src/shared/audit.js';
import {
  canonicalJson,
  keyIdOf,
  recordContent,
  recordHash,
  type VerifyOptions,
  verifyChain,
} from '../../../src/shared/audit-chain.js';

function makeKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}
const publicOf = (key: SigningKey): TrustedKey => ({ key_id: key.keyId, public_key: key.publicKeyPem });
/** Verify trusting `keys` only. */
const trusting = (keys: TrustedKey[], extra: Omit<VerifyOptions, 'trustedKeys'> = {}): VerifyOptions => ({
  trustedKeys: keys,
  ...extra,
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
    if (seq % every === 0 || seq === count)
      checkpoints.push(signCheckpoint(key, record, { time: content.time }));
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
    expect(verifyChain(records, checkpoints, trusting(keys))).toEqual({
      ok: true,
      count: 50,
      checkpoints: 5,
      chains: [
        { chain: 'legacy', count: 50, first_seq: 1, last_seq: 50, checkpoints: 5, covered_through: 50 },
      ],
      trusted_keys: [key.keyId],
      warnings: [],
    });
  });

  it('accepts a log purged up to a signed checkpoint (the anchor)', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    const result = verifyChain(
      records.slice(20),
      checkpoints.filter((c) => c.seq >= 20),
      trusting(keys),
    );
    expect(result).toMatchObject({ ok: true, count: 30, chains: [{ first_seq: 21 }] });
  });

  it('refuses a purge that is not anchored', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    expect(verifyChain(records.slice(15), checkpoints, trusting(keys))).toMatchObject({ ok: false, seq: 16 });
  });

  it('refuses an unsealed tail older than allowed, and only warns while it is recent', () => {
    const { records, checkpoints } = buildLog(50, key, 10);
    const unsealed = checkpoints.filter((c) => c.seq <= 40);
    expect(verifyChain(records.slice(0, 45), unsealed, trusting(keys))).toMatchObject({ ok: false, seq: 41 });
    const writtenAt = Date.parse(records[40]!.time);
    const recent = verifyChain(
      records.slice(0, 45),
      unsealed,
      trusting(keys, { maxUnsealedMs: 60_000, now: writtenAt + 1000 }),
    );
    expect(recent).toMatchObject({ ok: true });
    expect(recent.ok && recent.warnings.join()).toMatch(/from seq 41 through 45 are not covered/);
    const old = verifyChain(
      records.slice(0, 45),
      unsealed,
      trusting(keys, { maxUnsealedMs: 60_000, now: writtenAt + 120_001 }),
    );
    expect(old).toMatchObject({ ok: false, seq: 41, reason: expect.stringMatching(/^unsealed/) });
  });

  it('trusts only pinned keys: checkpoints by any other key are ignored, so nothing is covered', () => {
    const { records, checkpoints } = buildLog(20, key, 10);
    const stranger = makeKey();
    const result = verifyChain(records, checkpoints, trusting([publicOf(stranger)]));
    expect(result).toMatchObject({ ok: false, seq: 1, reason: expect.stringMatching(/^unsealed/) });
    const none = verifyChain(records, checkpoints, trusting([]));
    expect(none).toMatchObject({ ok: false, seq: 1 });
  });

  it("refuses a trusted key's checkpoint whose signature does not verify", () => {
    const { records, checkpoints } = buildLog(20, key, 10);
    const bad = checkpoints.map((cp, i) => (i === 0 ? { ...cp, time: '2027-01-01T00:00:00.000Z' } : cp));
    expect(verifyChain(records, bad, trusting(keys))).toMatchObject({
      ok: false,
      seq: 10,
      reason: expect.stringMatching(/invalid signature/),
    });
  });

  it('refuses checkpoints by a key after its chain rotated away from it (audit.key_rotated)', () => {
    const { records } = buildLog(20, key, 1000);
    // seq 10 announces the rotation; a later checkpoint by the old key is refused.
    const at = records[9]!;
    records[9] = { ...at, type: 'audit.key_rotated', data: { old_key_id: key.keyId } };
    rehashFrom(records, 9);
    const cps = [signCheckpoint(key, records[8]!), signCheckpoint(key, records[19]!)];
    expect(verifyChain(records, cps, trusting(keys))).toMatchObject({
      ok: false,
      seq: 20,
      reason: expect.stringMatching(/rotated away/),
    });
  });

  it('fails on a trusted alarm: a replica found records it did not write', () => {
    const { records, checkpoints } = buildLog(20, key, 10);
    const alarm = signCheckpoint(key, records[9]!, { alarm: { seq: 20, hash: records[19]!.hash } });
    expect(verifyChain(records, [...checkpoints, alarm], trusting(keys))).toMatchObject({
      ok: false,
      seq: 11,
      reason: expect.stringMatching(/^alarm/),
    });
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
            cps = checkpoints.map((cp) => signCheckpoint(forger, records[cp.seq - 1]!, { time: cp.time }));
          }
          break;
        }
      }
      const result = verifyChain(records, cps, trusting(keys));
      if (result.ok) throw new Error(`tampering #${i} (${kind} at ${at}) was not detected`);
      expect(result.seq).toBeGreaterThan(0);
      expect(result.reason).toBeTruthy();
    }
    for (const kind of kinds) expect(tally[kind]).toBeGreaterThan(100);
  });
});

describe('several chains: references, removal, truncation, witnesses', () => {
  const key = makeKey();
  const keys = [publicOf(key)];

  /** `count` records of chain `chain`, timed from `t0` seconds on. */
  function chainOf(chain: string, count: number, t0 = 0): AuditRecord[] {
    const records: AuditRecord[] = [];
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= count; seq++) {
      const content = {
        chain,
        seq,
        time: new Date(Date.UTC(2026, 0, 1, 0, 0, t0 + seq)).toISOString().replace('Z', '000Z'),
        type: 'statement' as const,
        session: `${chain}-s`,
        data: { text: `select ${seq}` },
      };
      const record: AuditRecord = { ...content, prev, hash: recordHash(prev, content) };
      records.push(record);
      prev = record.hash;
    }
    return records;
  }
  const headOf = (records: AuditRecord[]) => records.at(-1)!;
  const sign = (r: AuditRecord, refs: AuditRecord[] = []) =>
    signCheckpoint(key, r, { refs: refs.map((x) => ({ chain: x.chain!, seq: x.seq, hash: x.hash })) });

  /** Two replicas, each sealing its chain and referencing the other's head. */
  function twoReplicas() {
    const a = chainOf('gw-a', 30);
    const b = chainOf('gw-b', 20, 5);
    const checkpoints = [sign(a[19]!, [b[9]!]), sign(headOf(b), [a[19]!]), sign(headOf(a), [headOf(b)])];
    return { a, b, checkpoints };
  }
  const merged = (...chains: AuditRecord[][]) => chains.flat().sort((x, y) => x.time.localeCompare(y.time));

  it('verifies chains interleaved in time, each on its own', () => {
    const { a, b, checkpoints } = twoReplicas();
    const result = verifyChain(merged(a, b), checkpoints, trusting(keys));
    expect(result).toMatchObject({
      ok: true,
      count: 50,
      chains: [
        { chain: 'gw-a', count: 30, last_seq: 30 },
        { chain: 'gw-b', count: 20, last_seq: 20 },
      ],
    });
  });

  it('detects a whole chain removed, naming it', () => {
    const { a, checkpoints } = twoReplicas();
    // Its records and its own checkpoints gone: the other chain's references still name it.
    const result = verifyChain(
      a,
      checkpoints.filter((cp) => cp.chain !== 'gw-b'),
      trusting(keys),
    );
    expect(result).toMatchObject({
      ok: false,
      chain: 'gw-b',
      reason: expect.stringMatching(/chain gw-b is missing/),
    });
  });

  it('detects a chain cut short', () => {
    const { a, b, checkpoints } = twoReplicas();
    const result = verifyChain(
      merged(a, b.slice(0, 15)),
      checkpoints.filter((cp) => cp.chain !== 'gw-b'),
      trusting(keys),
    );
    expect(result).toMatchObject({
      ok: false,
      chain: 'gw-b',
      seq: 16,
      reason: expect.stringMatching(/truncated/),
    });
  });

  it('lets a reference from another chain cover the unsealed tail of a replica that died', () => {
    const a = chainOf('gw-a', 10);
    const dead = chainOf('gw-dead', 12);
    // gw-dead signed seq 5 only; gw-a references its head after it died.
    const checkpoints = [sign(dead[4]!), sign(headOf(a), [headOf(dead)])];
    expect(verifyChain(merged(a, dead), checkpoints, trusting(keys))).toMatchObject({ ok: true });
    // Without the reference, its tail is unsealed.
    expect(verifyChain(merged(a, dead), [sign(dead[4]!), sign(headOf(a))], trusting(keys))).toMatchObject({
      ok: false,
      chain: 'gw-dead',
      seq: 6,
    });
  });

  it('refuses a chain no checkpoint of its own vouches for, even when another chain references it', () => {
    const a = chainOf('gw-a', 10);
    // Someone with write access to the store made up a chain; the next genuine seal referenced its head.
    const fabricated = chainOf('gw-forged', 6);
    const checkpoints = [sign(a[4]!), sign(headOf(a), [headOf(fabricated)])];
    expect(verifyChain(merged(a, fabricated), checkpoints, trusting(keys))).toMatchObject({
      ok: false,
      chain: 'gw-forged',
      seq: 1,
      reason: expect.stringMatching(/no record of chain gw-forged is covered by a checkpoint of its own/),
    });
    // A new chain gets a grace of maxUnsealedMs for its first seal (a warning only).
    const recent = verifyChain(
      merged(a, fabricated),
      checkpoints,
      trusting(keys, { maxUnsealedMs: 60_000, now: Date.parse(fabricated[0]!.time) + 1000 }),
    );
    expect(recent).toMatchObject({ ok: true });
    // Its own trusted checkpoint makes it count.
    expect(
      verifyChain(merged(a, fabricated), [...checkpoints, sign(fabricated[2]!)], trusting(keys)),
    ).toMatchObject({ ok: true });
  });

  it('detects an edited tail that a reference vouched for', () => {
    const a = chainOf('gw-a', 10);
    const dead = chainOf('gw-dead', 12);
    const checkpoints = [sign(dead[4]!), sign(headOf(a), [headOf(dead)])];
    dead[8] = { ...dead[8]!, data: { text: 'select forged' } };
    rehashFrom(dead, 8);
    expect(verifyChain(merged(a, dead), checkpoints, trusting(keys))).toMatchObject({
      ok: false,
      chain: 'gw-dead',
      seq: 12,
      reason: expect.stringMatching(/reference from chain gw-a/),
    });
  });

  it('with a witness: a checkpoint deleted from the log is found out; a purged one is not', () => {
    const { a, b, checkpoints } = twoReplicas();
    const witness = [...checkpoints];
    // The deleted checkpoint covered nothing else uniquely: without the witness the log still verifies.
    const thinned = checkpoints.filter((_, i) => i !== 0);
    expect(verifyChain(merged(a, b), thinned, trusting(keys))).toMatchObject({ ok: true });
    expect(verifyChain(merged(a, b), thinned, trusting(keys, { witness }))).toMatchObject({
      ok: false,
      chain: 'gw-a',
      seq: 20,
      reason: expect.stringMatching(/in the witness but not in the log/),
    });
    // Retention purged gw-a through seq 20 (the anchor stays): the witness's older checkpoint is fine.
    const anchorOnly = [checkpoints[0]!, ...checkpoints.slice(1)];
    expect(verifyChain(merged(a.slice(20), b), anchorOnly, trusting(keys, { witness }))).toMatchObject({
      ok: true,
    });
  });

  it('with a witness: checkpoints replaced by a forger (rewritten chain, own key planted) are found out', () => {
    const { a, b, checkpoints } = twoReplicas();
    const forger = makeKey();
    a[4] = { ...a[4]!, data: { text: 'select forged' } };
    rehashFrom(a, 4);
    const forged = [signCheckpoint(forger, headOf(a)), ...checkpoints.filter((cp) => cp.chain !== 'gw-a')];
    // Pinned keys alone already refuse it (the forger's key is not trusted, the references no longer match) …
    expect(verifyChain(merged(a, b), forged, trusting(keys))).toMatchObject({ ok: false });
    // … and even trusting the forger's key, the witness's copy contradicts the rewritten chain.
    expect(
      verifyChain(merged(a, b), forged, trusting([...keys, publicOf(forger)], { witness: checkpoints })),
    ).toMatchObject({ ok: false, chain: 'gw-a' });
  });
});
