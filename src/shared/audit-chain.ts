/**
 * The audit log's hash chain: canonical encoding, record hashes, checkpoint signatures and verification.
 * Pure (node:crypto only): the gateway verifies online with it, `hoopctl audit verify FILE` offline.
 */
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import type { AuditRecord, ChainVerdict, Checkpoint, TrustedKey, VerifyResult } from './audit.js';
import { chainOf, GENESIS_HASH } from './audit.js';

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

/** The bytes a checkpoint's signature covers: every member but the signature (legacy ones: the four). */
export function checkpointPayload(cp: Omit<Checkpoint, 'signature'>): Buffer {
  if (cp.chain === undefined) {
    return Buffer.from(canonicalJson({ seq: cp.seq, hash: cp.hash, time: cp.time, key_id: cp.key_id }));
  }
  return Buffer.from(
    canonicalJson({
      chain: cp.chain,
      seq: cp.seq,
      hash: cp.hash,
      time: cp.time,
      key_id: cp.key_id,
      refs: cp.refs,
      alarm: cp.alarm,
    }),
  );
}

/** key_id of a public key: 16 hex digits of SHA-256 over its SPKI DER. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** A pinned public key (PEM text) as verification takes it; throws when the text is not a public key. */
export function trustedKeyOf(publicKeyPem: string, source?: string): TrustedKey {
  return { key_id: keyIdOf(publicKeyPem), public_key: publicKeyPem, source };
}

export function checkpointSignatureValid(cp: Checkpoint, key: Pick<TrustedKey, 'public_key'>): boolean {
  try {
    return verifySignature(null, checkpointPayload(cp), key.public_key, Buffer.from(cp.signature, 'base64'));
  } catch {
    return false;
  }
}

export interface VerifyOptions {
  /**
   * The only keys whose checkpoints count: the gateway's pinned keys, or the auditor's --public-key.
   * Checkpoints by any other key are ignored (a warning names them), never trusted because they are there.
   */
  trustedKeys: readonly TrustedKey[];
  /**
   * Records newer than this (ms before `now`) may still wait for their checkpoint; older ones must be
   * covered by a trusted checkpoint or reference. Default 0: every record must be covered.
   */
  maxUnsealedMs?: number;
  /** Epoch ms the age of unsealed records is measured against (default Date.now()). */
  now?: number;
  /** Checkpoints a witness (an audit sink) received: each must still be in the log, and match it. */
  witness?: readonly Checkpoint[];
  /**
   * The records are every chain's whole retained log, not a time window (default true): a chain that a
   * trusted checkpoint references but that is missing or shorter than referenced is then a failure.
   */
  complete?: boolean;
}

type Failure = Extract<VerifyResult, { ok: false }>;

/** Something trusted that vouches for "record `seq` of this chain has hash `hash`". */
interface Attestation {
  seq: number;
  hash: string;
  /** The checkpoint it is (or is inside). */
  cp: Checkpoint;
  kind: 'checkpoint' | 'reference' | 'witness';
}

/** What the verifier knows of one chain while its records stream by. */
class ChainState {
  last: { seq: number; hash: string } | undefined;
  first: number | undefined;
  count = 0;
  matched = 0;
  /** Trusted checkpoints of this chain itself that matched (references excluded): is it a genuine chain? */
  ownMatched = 0;
  coveredThrough = 0;
  /** The first record after the last one a trusted attestation covered. */
  uncovered: { seq: number; time: string } | undefined;
  readonly attestations = new Map<number, Attestation[]>();
  /** Keys this chain rotated away from (audit.key_rotated): their later checkpoints are refused. */
  readonly retiredKeys = new Set<string>();

  constructor(readonly chain: string) {}

  attest(a: Attestation): void {
    const list = this.attestations.get(a.seq) ?? [];
    list.push(a);
    this.attestations.set(a.seq, list);
  }
}

const describeAttestation = (a: Attestation): string =>
  a.kind === 'reference'
    ? `a reference from chain ${chainOf(a.cp)}'s checkpoint at seq ${a.cp.seq}`
    : a.kind === 'witness'
      ? `the witnessed checkpoint at seq ${a.seq}`
      : `the signed checkpoint at seq ${a.seq}`;

/**
 * Verifies a log of one or more chains, records fed one at a time (each chain's in seq order; chains may
 * interleave, as a time-ordered export does), against checkpoints known up front, trusting only the
 * pinned keys. `add` returns the first failure and keeps returning it.
 *
 * Per chain: seq follows seq, prev is the previous hash, the hash recomputes, every trusted checkpoint
 * and every trusted reference from another chain's checkpoint matches its record, the chain starts at
 * genesis or at a trusted anchor (retention), and every record older than `maxUnsealedMs` is covered by
 * a trusted attestation at or after it. A trusted alarm fails. A chain referenced but missing or cut
 * short fails (complete logs).
 */
export class LogVerifier {
  private readonly trusted = new Map<string, TrustedKey>();
  private readonly chains = new Map<string, ChainState>();
  private readonly untrusted = new Map<string, number>();
  private readonly inLog = new Set<string>();
  private readonly witnessed: Attestation[] = [];
  /** Each chain's first record's time. */
  private readonly firstTimes = new Map<string, string>();
  private failure: Failure | undefined;

  constructor(
    checkpoints: readonly Checkpoint[],
    private readonly options: VerifyOptions,
  ) {
    for (const key of options.trustedKeys) this.trusted.set(key.key_id, key);
    for (const cp of checkpoints) {
      this.inLog.add(cp.signature);
      this.admit(cp, 'checkpoint');
    }
    for (const cp of options.witness ?? []) this.admit(cp, 'witness');
  }

  private state(chain: string): ChainState {
    let st = this.chains.get(chain);
    if (!st) {
      st = new ChainState(chain);
      this.chains.set(chain, st);
    }
    return st;
  }

  /** A checkpoint by a trusted key becomes attestations (its own, and one per reference); others are noted. */
  private admit(cp: Checkpoint, kind: 'checkpoint' | 'witness'): void {
    if (this.failure) return;
    const chain = chainOf(cp);
    const key = this.trusted.get(cp.key_id);
    if (!key) {
      this.untrusted.set(cp.key_id, (this.untrusted.get(cp.key_id) ?? 0) + 1);
      return;
    }
    if (cp.alarm) {
      if (!this.signed(cp, chain)) return;
      this.fail(
        chain,
        cp.seq + 1,
        `alarm: the replica writing chain ${chain} last wrote seq ${cp.seq} but found seq ${cp.alarm.seq} (hash ${cp.alarm.hash.slice(0, 12)}…) in the store at ${cp.time}: records it did not write`,
      );
      return;
    }
    const own: Attestation = { seq: cp.seq, hash: cp.hash, cp, kind };
    this.state(chain).attest(own);
    if (kind === 'witness') this.witnessed.push(own);
    for (const ref of cp.refs ?? []) {
      if (ref.chain === chain) continue;
      this.state(ref.chain).attest({ seq: ref.seq, hash: ref.hash, cp, kind: 'reference' });
    }
  }

  add(record: AuditRecord): Failure | undefined {
    if (this.failure) return this.failure;
    this.check(record);
    return this.failure;
  }

  /** Signatures are checked once, when a checkpoint is first relied on; an invalid one is a failure. */
  private readonly signatures = new Map<Checkpoint, boolean>();
  private signed(cp: Checkpoint, chain = chainOf(cp)): boolean {
    let valid = this.signatures.get(cp);
    if (valid === undefined) {
      valid = checkpointSignatureValid(cp, this.trusted.get(cp.key_id)!);
      this.signatures.set(cp, valid);
    }
    if (!valid)
      this.fail(
        chain,
        cp.seq,
        `the checkpoint at seq ${cp.seq} has an invalid signature by trusted key ${cp.key_id}`,
      );
    return valid;
  }

  private fail(chain: string, seq: number, reason: string): Failure {
    this.failure ??= { ok: false, chain, seq, reason };
    return this.failure;
  }

  private check(record: AuditRecord): void {
    const chain = chainOf(record);
    const st = this.state(chain);
    const seq = record.seq;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      this.fail(chain, Number(seq) || 0, 'malformed: seq is not a positive integer');
      return;
    }
    if (!st.last) {
      if (!this.checkStart(st, record)) return;
      st.first = seq;
      this.firstTimes.set(chain, record.time);
    } else {
      if (seq <= st.last.seq) {
        this.fail(chain, seq, `out of order: seq ${seq} follows seq ${st.last.seq}`);
        return;
      }
      if (seq !== st.last.seq + 1) {
        this.fail(chain, st.last.seq + 1, `missing: seq ${st.last.seq + 1} is absent`);
        return;
      }
      if (record.prev !== st.last.hash) {
        this.fail(chain, seq, 'prev does not match the hash of the record before it');
        return;
      }
    }
    let computed: string;
    try {
      computed = recordHash(record.prev, recordContent(record));
    } catch (err) {
      this.fail(chain, seq, `malformed: ${(err as Error).message}`);
      return;
    }
    if (computed !== record.hash) {
      this.fail(chain, seq, 'content does not match its hash (the record was edited)');
      return;
    }
    // From the rotation record on (itself included), the old key no longer signs this chain.
    if (record.type === 'audit.key_rotated' && typeof record.data.old_key_id === 'string')
      st.retiredKeys.add(record.data.old_key_id);
    if (!this.checkAttestations(st, record)) return;
    st.last = { seq, hash: record.hash };
    st.count++;
  }

  /** The first record kept: the genesis record, or one anchored by a trusted checkpoint of the record before it. */
  private checkStart(st: ChainState, record: AuditRecord): boolean {
    if (record.seq === 1) {
      if (record.prev === GENESIS_HASH) return true;
      this.fail(st.chain, 1, 'prev of the first record is not the genesis hash');
      return false;
    }
    const anchors = (st.attestations.get(record.seq - 1) ?? []).filter((a) => a.hash === record.prev);
    if (anchors.some((a) => !this.signed(a.cp))) return false;
    if (anchors.length) {
      st.matched++;
      if (anchors.some((a) => a.kind !== 'reference')) st.ownMatched++;
      return true;
    }
    const all = st.attestations.get(record.seq - 1) ?? [];
    const why = all.length ? 'its hash does not match' : 'none found';
    this.fail(
      st.chain,
      record.seq,
      `the chain starts at seq ${record.seq} without a trusted checkpoint of seq ${record.seq - 1} to anchor it (${why})`,
    );
    return false;
  }

  private checkAttestations(st: ChainState, record: AuditRecord): boolean {
    for (const a of st.attestations.get(record.seq) ?? []) {
      if (!this.signed(a.cp)) return false;
      if (a.hash !== record.hash) {
        this.fail(
          st.chain,
          record.seq,
          `the record's hash differs from ${describeAttestation(a)} (rewritten chain)`,
        );
        return false;
      }
      if (a.kind !== 'reference' && st.retiredKeys.has(a.cp.key_id)) {
        this.fail(
          st.chain,
          record.seq,
          `the checkpoint at seq ${record.seq} is signed by key ${a.cp.key_id} after this chain rotated away from it`,
        );
        return false;
      }
      st.matched++;
      if (a.kind !== 'reference') st.ownMatched++;
      st.coveredThrough = record.seq;
      st.uncovered = undefined;
    }
    if (st.coveredThrough < record.seq && !st.uncovered)
      st.uncovered = { seq: record.seq, time: record.time };
    return true;
  }

  finish(): VerifyResult {
    if (this.failure) return this.withKeys(this.failure);
    const complete = this.options.complete ?? true;
    const warnings: string[] = [];
    for (const st of this.chains.values()) {
      if (complete && this.checkEnd(st)) break;
      if (this.checkGenuine(st, warnings)) break;
      if (this.checkCoverage(st, warnings)) break;
    }
    if (!this.failure) this.checkWitnessKept();
    if (this.failure) return this.withKeys(this.failure);
    for (const [keyId, n] of this.untrusted) {
      warnings.push(
        `${n} checkpoint${n === 1 ? '' : 's'} signed by key ${keyId}, which is not trusted, ignored (pin it with audit.trusted_keys or --public-key if it is yours)`,
      );
    }
    const chains: ChainVerdict[] = [...this.chains.values()]
      .filter((st) => st.count > 0)
      .sort((a, b) => a.chain.localeCompare(b.chain))
      .map((st) => ({
        chain: st.chain,
        count: st.count,
        first_seq: st.first,
        last_seq: st.last?.seq,
        checkpoints: st.matched,
        covered_through: st.coveredThrough,
      }));
    return {
      ok: true,
      count: chains.reduce((n, c) => n + c.count, 0),
      checkpoints: chains.reduce((n, c) => n + c.checkpoints, 0),
      chains,
      trusted_keys: [...this.trusted.keys()],
      warnings,
    };
  }

  private withKeys(failure: Failure): Failure {
    return { ...failure, trusted_keys: [...this.trusted.keys()] };
  }

  /** Attestations past a chain's end: the chain was cut short, or removed. True when it failed. */
  private checkEnd(st: ChainState): boolean {
    const lastSeq = st.last?.seq ?? 0;
    const beyond = [...st.attestations.values()]
      .flat()
      .filter((a) => a.seq > lastSeq)
      .sort((a, b) => a.seq - b.seq)[0];
    if (!beyond) return false;
    if (!this.signed(beyond.cp)) return true;
    if (!st.last) {
      // No record at all: fine only if the chain's own trusted checkpoint says it was purged this far.
      const anchor = Math.max(
        0,
        ...[...st.attestations.values()]
          .flat()
          .filter((a) => a.kind !== 'reference')
          .map((a) => a.seq),
      );
      if (anchor >= beyond.seq) return false;
      this.fail(
        st.chain,
        beyond.seq,
        `chain ${st.chain} is missing, yet ${describeAttestation(beyond)} vouches for its seq ${beyond.seq}`,
      );
      return true;
    }
    this.fail(
      st.chain,
      lastSeq + 1,
      `missing: ${describeAttestation(beyond)} vouches for seq ${beyond.seq} but chain ${st.chain} ends at seq ${lastSeq} (truncated)`,
    );
    return true;
  }

  /**
   * A chain counts only if a trusted checkpoint of its own vouches for some of it (every replica seals
   * right after its first batch): references from other chains attest what the store held, so without
   * this, a chain someone fabricated in the store would be covered by the next genuine reference.
   */
  private checkGenuine(st: ChainState, warnings: string[]): boolean {
    if (!st.last || st.ownMatched > 0) return false;
    const first = st.first ?? 1;
    const what = `no record of chain ${st.chain} is covered by a checkpoint of its own signed by a trusted key (is its replica's key pinned?)`;
    const maxAge = this.options.maxUnsealedMs ?? 0;
    const started = this.firstTimes.get(st.chain);
    const age =
      started === undefined
        ? Number.POSITIVE_INFINITY
        : (this.options.now ?? Date.now()) - Date.parse(started);
    if (maxAge > 0 && age <= maxAge) {
      warnings.push(`${what} yet (it began ${Math.round(age / 1000)} s ago)`);
      return false;
    }
    // References to it vouch for nothing then.
    st.coveredThrough = 0;
    this.fail(st.chain, first, `unsealed: ${what}`);
    return true;
  }

  private checkCoverage(st: ChainState, warnings: string[]): boolean {
    if (!st.uncovered || !st.last) return false;
    const maxAge = this.options.maxUnsealedMs ?? 0;
    const age = (this.options.now ?? Date.now()) - Date.parse(st.uncovered.time);
    const what = `records of chain ${st.chain} from seq ${st.uncovered.seq} through ${st.last.seq} are not covered by a trusted checkpoint`;
    if (maxAge > 0 && age <= maxAge) {
      warnings.push(
        `${what} yet (written ${Math.round(age / 1000)} s ago; they must be within ${Math.round(maxAge / 1000)} s)`,
      );
      return false;
    }
    this.fail(st.chain, st.uncovered.seq, `unsealed: ${what}`);
    return true;
  }

  /** Every witnessed checkpoint must still be in the log, unless retention purged what it covered. */
  private checkWitnessKept(): void {
    for (const a of this.witnessed) {
      if (this.inLog.has(a.cp.signature)) continue;
      if (!this.signed(a.cp)) return;
      const st = this.state(chainOf(a.cp));
      if (st.first !== undefined && a.seq < st.first - 1) continue;
      this.fail(
        st.chain,
        a.seq,
        `the checkpoint of chain ${st.chain} at seq ${a.seq} signed ${a.cp.time} is in the witness but not in the log (deleted or replaced)`,
      );
      return;
    }
  }
}

/** Verify a whole log (or an export) at once. */
export function verifyChain(
  records: Iterable<AuditRecord>,
  checkpoints: readonly Checkpoint[],
  options: VerifyOptions,
): VerifyResult {
  const verifier = new LogVerifier(checkpoints, options);
  for (const record of records) {
    if (verifier.add(record)) break;
  }
  return verifier.finish();
}
