/**
 * The audit log's hash chain: canonical encoding, record hashes, checkpoint signatures and verification.
 * Pure (node:crypto only): the gateway verifies online with it, `hoopctl audit verify FILE` offline.
 */
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import type { AuditRecord, Checkpoint, SigningPublicKey, VerifyResult } from './audit.js';
import { GENESIS_HASH } from './audit.js';

/**
 * Deterministic JSON: object keys sorted by code unit, no whitespace, `undefined` members dropped
 * (and `undefined` in arrays written as null, as JSON.stringify does). Non-finite numbers are refused
 * because JSON cannot carry them and a record must re-encode to the same bytes after a round trip.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`cannot encode ${value} canonically`);
      return JSON.stringify(value);
    case 'object': {
      // Plain loops and string concatenation: this runs for every audit record, on the append path.
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const v = value[i];
          if (i > 0) out += ',';
          out += v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v);
        }
        return `${out}]`;
      }
      if (value instanceof Date) return JSON.stringify(value.toISOString());
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object).sort();
      let out = '{';
      for (const key of keys) {
        const v = object[key];
        if (v === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(key)}:${canonicalJson(v)}`;
      }
      return `${out}}`;
    }
    default:
      throw new Error(`cannot encode a ${typeof value} canonically`);
  }
}

/** A record's content: everything but the two hashes (prev is hashed separately, in front). */
export type RecordContent = Omit<AuditRecord, 'prev' | 'hash'>;

export function recordContent(record: AuditRecord): RecordContent {
  const { prev: _prev, hash: _hash, ...content } = record;
  return content;
}

/** SHA-256 hex over the previous record's hash followed by the canonical encoding of this record's content. */
export function recordHash(prev: string, content: RecordContent): string {
  return createHash('sha256').update(prev).update(canonicalJson(content)).digest('hex');
}

/** The bytes a checkpoint's signature covers. */
export function checkpointPayload(cp: Omit<Checkpoint, 'signature'>): Buffer {
  return Buffer.from(canonicalJson({ seq: cp.seq, hash: cp.hash, time: cp.time, key_id: cp.key_id }));
}

/** key_id of a public key: 16 hex digits of SHA-256 over its SPKI DER. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function checkpointSignatureValid(cp: Checkpoint, key: SigningPublicKey): boolean {
  try {
    return verifySignature(null, checkpointPayload(cp), key.public_key, Buffer.from(cp.signature, 'base64'));
  } catch {
    return false;
  }
}

export interface VerifyOptions {
  /**
   * The last record must be covered by a signed checkpoint (default true). Without it, whoever can write
   * the store could drop or rewrite the unsigned tail unnoticed; exports and online verify seal first.
   */
  requireSealedTail?: boolean;
}

type Failure = Extract<VerifyResult, { ok: false }>;

/**
 * Verifies records one at a time, in the order given (so the log can be paged through without holding
 * it), against checkpoints and keys known up front. `add` returns the first failure and keeps returning it.
 */
export class ChainVerifier {
  private readonly keys = new Map<string, SigningPublicKey>();
  private readonly checkpointsBySeq = new Map<number, Checkpoint[]>();
  private readonly checkpointSeqs: number[];
  private failure: Failure | undefined;
  private last: { seq: number; hash: string } | undefined;
  private first: number | undefined;
  private count = 0;
  private checkpointsChecked = 0;

  constructor(
    checkpoints: readonly Checkpoint[],
    publicKeys: readonly SigningPublicKey[],
    private readonly options: VerifyOptions = {},
  ) {
    for (const key of publicKeys) this.keys.set(key.key_id, key);
    for (const cp of checkpoints) {
      const list = this.checkpointsBySeq.get(cp.seq) ?? [];
      list.push(cp);
      this.checkpointsBySeq.set(cp.seq, list);
    }
    this.checkpointSeqs = [...this.checkpointsBySeq.keys()].sort((a, b) => a - b);
  }

  add(record: AuditRecord): Failure | undefined {
    if (this.failure) return this.failure;
    this.failure = this.check(record);
    return this.failure;
  }

  finish(): VerifyResult {
    if (this.failure) return this.failure;
    const lastSeq = this.last?.seq ?? 0;
    const beyond = this.checkpointSeqs.find((s) => s > lastSeq);
    if (beyond !== undefined) {
      return this.fail(
        lastSeq + 1,
        `missing: a signed checkpoint covers seq ${beyond} but the log ends at ${lastSeq}`,
      );
    }
    if (this.last && this.options.requireSealedTail !== false) {
      const sealed = this.checkpointSeqs.at(-1);
      if (sealed !== this.last.seq) {
        return this.fail(
          (sealed ?? 0) + 1,
          `unsealed: records after seq ${sealed ?? 0} are not covered by a signed checkpoint`,
        );
      }
    }
    return {
      ok: true,
      count: this.count,
      first_seq: this.first,
      last_seq: this.last?.seq,
      checkpoints: this.checkpointsChecked,
    };
  }

  private fail(seq: number, reason: string): Failure {
    this.failure = { ok: false, seq, reason };
    return this.failure;
  }

  private check(record: AuditRecord): Failure | undefined {
    const seq = record.seq;
    if (!Number.isSafeInteger(seq) || seq < 1)
      return this.fail(Number(seq) || 0, 'malformed: seq is not a positive integer');
    if (!this.last) {
      // The start: either the genesis record, or the first record kept after a purge, anchored at a signed
      // checkpoint of the record just before it.
      if (seq === 1) {
        if (record.prev !== GENESIS_HASH)
          return this.fail(seq, 'prev of the first record is not the genesis hash');
      } else {
        const anchor = this.validCheckpoint(seq - 1, record.prev);
        if (anchor !== true) {
          return this.fail(
            seq,
            `the log starts at seq ${seq} without a signed checkpoint of seq ${seq - 1} to anchor it (${anchor})`,
          );
        }
      }
      this.first = seq;
    } else {
      if (seq <= this.last.seq)
        return this.fail(seq, `out of order: seq ${seq} follows seq ${this.last.seq}`);
      if (seq !== this.last.seq + 1)
        return this.fail(this.last.seq + 1, `missing: seq ${this.last.seq + 1} is absent`);
      if (record.prev !== this.last.hash)
        return this.fail(seq, 'prev does not match the hash of the record before it');
    }
    let computed: string;
    try {
      computed = recordHash(record.prev, recordContent(record));
    } catch (err) {
      return this.fail(seq, `malformed: ${(err as Error).message}`);
    }
    if (computed !== record.hash)
      return this.fail(seq, 'content does not match its hash (the record was edited)');
    for (const cp of this.checkpointsBySeq.get(seq) ?? []) {
      const key = this.keys.get(cp.key_id);
      if (!key) return this.fail(seq, `checkpoint at seq ${seq} is signed by unknown key ${cp.key_id}`);
      if (!checkpointSignatureValid(cp, key))
        return this.fail(seq, `checkpoint at seq ${seq} has an invalid signature`);
      if (key.retired_at && cp.time > key.retired_at) {
        return this.fail(seq, `checkpoint at seq ${seq} is signed by key ${cp.key_id} after it was retired`);
      }
      if (cp.hash !== record.hash) {
        return this.fail(
          seq,
          `the record's hash differs from the signed checkpoint at seq ${seq} (rewritten chain)`,
        );
      }
      this.checkpointsChecked++;
    }
    this.last = { seq, hash: record.hash };
    this.count++;
    return undefined;
  }

  /** true, or why no checkpoint at seq vouches for hash. */
  private validCheckpoint(seq: number, hash: string): true | string {
    const list = this.checkpointsBySeq.get(seq);
    if (!list?.length) return 'none found';
    for (const cp of list) {
      const key = this.keys.get(cp.key_id);
      if (key && checkpointSignatureValid(cp, key) && cp.hash === hash) {
        this.checkpointsChecked++;
        return true;
      }
    }
    return 'its hash or signature does not match';
  }
}

/** Verify a whole log (or an export) at once. */
export function verifyChain(
  records: Iterable<AuditRecord>,
  checkpoints: readonly Checkpoint[],
  publicKeys: readonly SigningPublicKey[],
  options: VerifyOptions = {},
): VerifyResult {
  const verifier = new ChainVerifier(checkpoints, publicKeys, options);
  for (const record of records) {
    if (verifier.add(record)) break;
  }
  return verifier.finish();
}
