/**
 * Signed checkpoints: every `every` records or `intervalMs`, the gateway signs "record N has hash H" with
 * its Ed25519 key. Whoever can write the store but does not hold the key cannot re-hash an edited chain
 * to match. Keys: one PEM file per gateway (generated on first start into the data directory unless
 * audit.signing_key_file names one); every public key ever used is kept in the store and exported.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint, SigningPublicKey } from '../../src/shared/audit.js';
import { checkpointPayload, keyIdOf } from '../../src/shared/audit-chain.js';
import type { ChainHead, Store } from '../store/types.js';

export const SIGNING_KEY_FILE = 'audit-signing-key.pem';
export const SIGNING_PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKeyPem: string;
}

function keyFromPem(pem: string, path: string): SigningKey {
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

/**
 * Rotate the generated key: the old file is kept as audit-signing-key.<key_id>.retired.pem, the old public
 * key is marked retired in the store (checkpoints it signed still verify; new ones by it do not), and a new
 * key takes over. Operators with signing_key_file rotate by pointing it at a new file.
 */
export async function rotateSigningKey(store: Store, dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  const old = loadOrCreateSigningKey({ dataDir });
  renameSync(path, join(dataDir, `audit-signing-key.${old.keyId}.retired.pem`));
  renameSync(
    join(dataDir, SIGNING_PUBLIC_KEY_FILE),
    join(dataDir, `audit-signing-key.${old.keyId}.retired.pub.pem`),
  );
  generateKeyFile(path);
  const fresh = loadOrCreateSigningKey({ dataDir });
  await registerSigningKey(store, fresh);
  await store.retireSigningKey(old.keyId, utcNow());
  return fresh;
}

export async function registerSigningKey(store: Store, key: SigningKey): Promise<void> {
  const entry: SigningPublicKey = { key_id: key.keyId, public_key: key.publicKeyPem, created_at: utcNow() };
  await store.putSigningKey(entry);
}

function utcNow(): string {
  return new Date().toISOString();
}

export function signCheckpoint(key: SigningKey, head: ChainHead, time = utcNow()): Checkpoint {
  const unsigned = { seq: head.seq, hash: head.hash, time, key_id: key.keyId };
  const signature = sign(null, checkpointPayload(unsigned), key.privateKey).toString('base64');
  return { ...unsigned, signature };
}

export interface CheckpointPolicy {
  /** Sign after this many records since the last checkpoint. */
  every: number;
  /** ... or after this long, when records came in since. 0 = no timer. */
  intervalMs: number;
}

/** Decides when to sign, and writes checkpoints to the store. */
export class Checkpointer {
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private signing: Promise<Checkpoint | undefined> | undefined;

  constructor(
    private readonly store: Store,
    readonly key: SigningKey,
    private readonly policy: CheckpointPolicy,
  ) {}

  /** Register the key, learn where the last checkpoint is, start the timer. */
  async start(): Promise<void> {
    await registerSigningKey(this.store, this.key);
    const latest = (await this.store.listCheckpoints()).at(-1);
    this.lastSeq = latest?.seq ?? 0;
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

  /** After a committed batch ending at `head`: sign it if `every` records went by. */
  async afterAppend(head: ChainHead): Promise<void> {
    if (head.seq - this.lastSeq >= this.policy.every) await this.signHead(head);
  }

  /** Sign the store's current head unless it is signed already; exports and online verify call this first. */
  seal(): Promise<Checkpoint | undefined> {
    this.signing ??= (async () => {
      try {
        const head = await this.store.head();
        if (head.seq === 0 || head.seq <= this.lastSeq) return undefined;
        return await this.signHead(head);
      } finally {
        this.signing = undefined;
      }
    })();
    return this.signing;
  }

  private async signHead(head: ChainHead): Promise<Checkpoint> {
    const checkpoint = signCheckpoint(this.key, head);
    await this.store.addCheckpoint(checkpoint);
    this.lastSeq = Math.max(this.lastSeq, head.seq);
    return checkpoint;
  }
}
