/**
 * Signed checkpoints: every `every` records or `intervalMs`, the gateway signs "record N of my chain has
 * hash H" with its Ed25519 key, plus where the other chains stood. Whoever can write the store but does
 * not hold the key cannot re-hash an edited chain to match. Keys: one PEM file per gateway (generated on
 * first start into the data directory unless audit.signing_key_file names one). Verification trusts only
 * pinned public keys (trusted-keys.ts); the store's list of keys is informational.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainRef, Checkpoint, SigningPublicKey } from '../../src/shared/audit.js';
import { checkpointPayload, keyIdOf } from '../../src/shared/audit-chain.js';
import type { AuditStore, ChainHead } from '../store/types.js';

export const SIGNING_KEY_FILE = 'audit-signing-key.pem';
export const SIGNING_PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

/** The signing key in a PEM text; throws saying why it is not an Ed25519 private key. */
export function keyFromPem(pem: string, path: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`audit signing key ${path} is not a PEM private key: ${(err as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`audit signing key ${path} is ${privateKey.asymmetricKeyType}, expected ed25519`);
  }
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}

function generateKeyFile(path: string): void {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
}

/** The gateway's signing key: audit.signing_key_file if set (it must exist), else <dataDir>/audit-signing-key.pem, created once. */
export function loadOrCreateSigningKey(options: { dataDir: string; keyFile?: string }): SigningKey {
  const path = options.keyFile ?? join(options.dataDir, SIGNING_KEY_FILE);
  if (!existsSync(path)) {
    if (options.keyFile) throw new Error(`audit.signing_key_file: ${path} does not exist`);
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    generateKeyFile(path);
  }
  const key = keyFromPem(readFileSync(path, 'utf8'), path);
  // The public half beside the generated key, for auditors to pin: hoopctl audit verify --public-key.
  const publicPath = join(options.dataDir, SIGNING_PUBLIC_KEY_FILE);
  if (!options.keyFile && !existsSync(publicPath))
    writeFileSync(publicPath, key.publicKeyPem, { mode: 0o644 });
  return key;
}

/** SHA-256 hex over a public key's SPKI DER: the fingerprint operators compare (key_id is its first 16 digits). */
export function fingerprintOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/**
 * Rotate the generated key files in `dataDir`: the old public half is kept as
 * audit-signing-key.<key_id>.retired.pub.pem (trusted from then on: it is on the operator's disk, not in
 * the store), the old private key is deleted (nothing needs it any more), a new key takes over. The store's
 * informational key list is updated. Operators with audit.signing_key_file rotate by pointing it at a new
 * file and pinning the old public key in audit.trusted_keys. See audit/rotation.ts for the whole action.
 */
export async function rotateSigningKey(store: AuditStore, dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  const old = loadOrCreateSigningKey({ dataDir });
  writeFileSync(join(dataDir, `audit-signing-key.${old.keyId}.retired.pub.pem`), old.publicKeyPem, {
    mode: 0o644,
  });
  rmSync(join(dataDir, SIGNING_PUBLIC_KEY_FILE), { force: true });
  rmSync(path);
  generateKeyFile(path);
  const fresh = loadOrCreateSigningKey({ dataDir });
  await registerSigningKey(store, fresh);
  await store.retireSigningKey(old.keyId, utcNow());
  return fresh;
}

export async function registerSigningKey(store: AuditStore, key: SigningKey): Promise<void> {
  const entry: SigningPublicKey = { key_id: key.keyId, public_key: key.publicKeyPem, created_at: utcNow() };
  await store.putSigningKey(entry);
}

function utcNow(): string {
  return new Date().toISOString();
}

export function signCheckpoint(
  key: SigningKey,
  head: { chain?: string; seq: number; hash: string },
  extra: { time?: string; refs?: ChainRef[]; alarm?: { seq: number; hash: string } } = {},
): Checkpoint {
  const unsigned: Omit<Checkpoint, 'signature'> = {
    ...(head.chain === undefined ? {} : { chain: head.chain }),
    seq: head.seq,
    hash: head.hash,
    time: extra.time ?? utcNow(),
    key_id: key.keyId,
    ...(extra.refs?.length ? { refs: extra.refs } : {}),
    ...(extra.alarm ? { alarm: extra.alarm } : {}),
  };
  const signature = sign(null, checkpointPayload(unsigned), key.privateKey).toString('base64');
  return { ...unsigned, signature };
}

export interface CheckpointPolicy {
  /** Sign after this many records since the last checkpoint. */
  every: number;
  /** ... or after this long, when records came in since. 0 = no timer. */
  intervalMs: number;
}

/**
 * Decides when to sign, and writes checkpoints to the store. It signs the head its own log committed
 * (never the store's head, which whoever can write the store could have moved) and references the heads
 * of the other chains that moved since its last checkpoint.
 */
export class Checkpointer {
  private signedThrough: number;
  private timer: NodeJS.Timeout | undefined;
  private signing: Promise<Checkpoint | undefined> | undefined;
  /** Each other chain's head as last referenced: only changes are referenced again. */
  private readonly referenced = new Map<string, string>();
  private readonly listeners = new Set<(cp: Checkpoint) => void>();

  constructor(
    private readonly store: AuditStore,
    readonly key: SigningKey,
    private readonly policy: CheckpointPolicy,
    private readonly chain: string,
    /** The head the log committed last. */
    private readonly head: () => ChainHead,
    signedThrough = 0,
    /** Before each signing: the log compares the store's head with its own (an idle chain's alarm). */
    private readonly beforeSeal: () => Promise<void> = async () => {},
  ) {
    this.signedThrough = signedThrough;
  }

  /** Register the key (informational), start the timer. */
  async start(): Promise<void> {
    await registerSigningKey(this.store, this.key);
    if (this.policy.intervalMs > 0) {
      this.timer = setInterval(() => {
        this.seal().catch(() => undefined); // the next append or interval tries again
      }, this.policy.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Called with each checkpoint signed (the log checks the store's head; sinks witness). */
  onCheckpoint(listener: (cp: Checkpoint) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * After a committed batch: sign if `every` records went by since the last checkpoint — or if this
   * chain has no checkpoint of its own yet: verification counts a chain only once one vouches for it.
   */
  async afterAppend(head: ChainHead): Promise<void> {
    if (this.signedThrough === 0 || head.seq - this.signedThrough >= this.policy.every) await this.seal();
  }

  /**
   * Sign the head now unless it is signed already (exports, verification and shutdown call this); with
   * `force`, sign even then (to reference other chains that moved, e.g. one just closed).
   */
  async seal(force = false): Promise<Checkpoint | undefined> {
    // One signing at a time; a caller that finds one running waits for it and then looks again (the head
    // may have moved past what that one signed).
    while (this.signing) await this.signing.catch(() => undefined);
    const signing = (async () => {
      await this.beforeSeal();
      const head = this.head();
      const refs = await this.changedRefs();
      if (head.seq === 0 && refs.length === 0) return undefined;
      if (head.seq <= this.signedThrough && refs.length === 0 && !force) return undefined;
      return await this.write(signCheckpoint(this.key, { chain: this.chain, ...head }, { refs }), refs);
    })();
    this.signing = signing;
    try {
      return await signing;
    } finally {
      this.signing = undefined;
    }
  }

  /** Sign "I wrote `written` last, the store shows `found`" (a trusted alarm fails verification). */
  async alarm(written: ChainHead, found: ChainHead): Promise<Checkpoint> {
    const cp = signCheckpoint(
      this.key,
      { chain: this.chain, seq: written.seq, hash: written.hash },
      { alarm: { seq: found.seq, hash: found.hash } },
    );
    await this.store.addCheckpoint(cp);
    for (const listener of this.listeners) listener(cp);
    return cp;
  }

  private async write(cp: Checkpoint, refs: ChainRef[]): Promise<Checkpoint> {
    await this.store.addCheckpoint(cp);
    this.signedThrough = Math.max(this.signedThrough, cp.seq);
    for (const ref of refs) this.referenced.set(ref.chain, `${ref.seq}:${ref.hash}`);
    for (const listener of this.listeners) listener(cp);
    return cp;
  }

  /** Heads of the other chains that moved since this signer last referenced them. */
  private async changedRefs(): Promise<ChainRef[]> {
    const refs: ChainRef[] = [];
    for (const info of await this.store.listChains()) {
      if (info.chain === this.chain || info.head.seq === 0) continue;
      if (this.referenced.get(info.chain) === `${info.head.seq}:${info.head.hash}`) continue;
      refs.push({ chain: info.chain, seq: info.head.seq, hash: info.head.hash });
    }
    return refs;
  }
}
