/**
 * SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it, both sides:
 * the gateway is a client to the database, and a server to the local client holding the one-time password.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((byte, i) => byte ^ b[i]!));
/** SASLprep stand-in: NFKC covers what real passwords need; PostgreSQL itself falls back to raw bytes. */
const prepare = (password: string): string => password.normalize('NFKC');

function parseAttributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

export class ScramError extends Error {}

/** The database side of our upstream login. */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | undefined;

  constructor(private readonly password: string) {}

  /** SASLInitialResponse data. */
  first(): string {
    this.clientFirstBare = `n=,r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  /** Given the server-first-message, the client-final-message. */
  final(serverFirst: string): string {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) {
      throw new ScramError('malformed SCRAM server-first-message');
    }
    if (!nonce.startsWith(this.clientNonce)) throw new ScramError('SCRAM server nonce does not extend ours');
    const salted = pbkdf2Sync(prepare(this.password), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Check the server-final-message: the server proves it knew the password too. */
  verifyServer(serverFinal: string): void {
    const signature = parseAttributes(serverFinal).get('v');
    if (!signature || !this.expectedServerSignature)
      throw new ScramError('malformed SCRAM server-final-message');
    const got = Buffer.from(signature, 'base64');
    if (got.length !== 32 || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new ScramError('the server failed to prove it knows the password');
    }
  }
}

/** The gateway side of the local client's login with the one-time password. */
export class ScramServer {
  private readonly salt = randomBytes(16);
  private readonly iterations = 4096;
  private readonly serverNonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(private readonly password: string) {}

  /** Given the client-first-message, the server-first-message. */
  first(clientFirst: string): string {
    if (!clientFirst.startsWith('n,')) throw new ScramError('channel binding is not supported on this hop');
    const bareAt = clientFirst.indexOf(',', 2);
    this.clientFirstBare = clientFirst.slice(bareAt + 1);
    const clientNonce = parseAttributes(this.clientFirstBare).get('r');
    if (!clientNonce) throw new ScramError('malformed SCRAM client-first-message');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    return this.serverFirst;
  }

  /** Given the client-final-message, the server-final-message; throws when the proof is wrong. */
  final(clientFinal: string): string {
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw new ScramError('malformed SCRAM client-final-message');
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = parseAttributes(withoutProof);
    if (attrs.get('r') !== this.nonce) throw new ScramError('SCRAM nonce mismatch');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const salted = pbkdf2Sync(prepare(this.password), this.salt, this.iterations, 32, 'sha256');
    const storedKey = sha256(hmac(salted, 'Client Key'));
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    if (proof.length !== 32) throw new ScramError('password authentication failed');
    const clientKey = xor(proof, clientSignature);
    if (!timingSafeEqual(sha256(clientKey), storedKey))
      throw new ScramError('password authentication failed');
    return `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`;
  }
}

/** PostgreSQL's md5 password response: "md5" + md5(md5(password + user) + salt). */
export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return `md5${createHash('md5')
    .update(Buffer.concat([Buffer.from(inner), salt]))
    .digest('hex')}`;
}
