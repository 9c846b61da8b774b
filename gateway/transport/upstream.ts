/**
 * The gateway's own connection to PostgreSQL: TCP, optional TLS (disable / require / verify-ca /
 * verify-full with a CA file), startup and authentication (SCRAM-SHA-256, md5, cleartext) with
 * credentials only the gateway holds. Returns the authenticated socket and what the server said.
 */
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import {
  checkServerIdentity,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
  connect as tlsConnect,
} from 'node:tls';
import { serialize } from 'pg-protocol';
import { md5PasswordResponse, ScramClient } from '../../src/shared/scram.js';
import {
  type BackendKey,
  decodeFields,
  decodeReadyForQuery,
  type TransactionStatus,
} from '../pgwire/backend.js';
import { type Frame, FrameReader } from '../pgwire/frames.js';
import { UpstreamReads } from './upstream-reads.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  tls: { mode: 'disable' | 'require' | 'verify-ca' | 'verify-full'; ca?: string };
  /** Startup parameters the gateway itself sets (e.g. an agent's statement_timeout); they win over the client's. */
  parameters?: Record<string, string>;
}

export interface UpstreamConnection {
  socket: Socket | TLSSocket;
  /** Plain TCP: the socket reads into reused memory, lent to the relay (upstream-reads.ts). */
  reads?: UpstreamReads;
  /** ParameterStatus values the server sent at startup. */
  parameters: Map<string, string>;
  backendKey: BackendKey;
  status: TransactionStatus;
  /** Bytes that arrived after ReadyForQuery (normally none). */
  leftover: Buffer;
}

/** An upstream failure: `sqlstate` and `message` are what the client is told. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly sqlstate = '08006',
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

const caCache = new Map<string, Buffer>();
function readCa(path: string): Buffer {
  let ca = caCache.get(path);
  if (!ca) {
    ca = readFileSync(path);
    caCache.set(path, ca);
  }
  return ca;
}

/**
 * One TLS context per CA file, shared by every upstream connection: given `ca` itself, each connection
 * would build a context of its own with its own copy of the CA store (≈ 19 KB more per idle session,
 * with bench/idle-tunnels.mjs --upstream-tls).
 */
const contexts = new Map<string, SecureContext>();
function secureContextFor(caPath: string | undefined): SecureContext {
  const key = caPath ?? '';
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext(caPath ? { ca: readCa(caPath) } : {});
    contexts.set(key, context);
  }
  return context;
}

/** Open a TCP connection, and negotiate TLS as the target's mode asks. */
export async function openTransport(
  target: UpstreamTarget,
  timeoutMs = 10_000,
  reads?: UpstreamReads,
): Promise<Socket | TLSSocket> {
  const plain = target.tls.mode === 'disable';
  const socket = await new Promise<Socket>((resolve, reject) => {
    // Reads into reused memory work on a plain socket only (TLS decrypts into buffers of its own).
    const s = netConnect({ host: target.host, port: target.port, onread: plain ? reads?.onread : undefined });
    if (plain) reads?.attach(s);
    s.setNoDelay(true);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError(`timed out connecting to the database at ${target.host}:${target.port}`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new UpstreamError(`cannot connect to the database at ${target.host}:${target.port}: ${err.message}`),
      );
    });
  });
  if (plain) return socket;

  socket.write(serialize.requestSsl());
  const answer = await new Promise<Buffer>((resolve, reject) => {
    socket.once('data', resolve);
    socket.once('error', reject);
  });
  if (answer[0] !== 0x53 /* 'S' */) {
    socket.destroy();
    throw new UpstreamError(
      `the database at ${target.host}:${target.port} refused TLS (tls.mode is ${target.tls.mode})`,
    );
  }
  const verify = target.tls.mode === 'verify-ca' || target.tls.mode === 'verify-full';
  const tlsSocket = tlsConnect({
    socket,
    servername: /^[\d.]+$|:/.test(target.host) ? undefined : target.host,
    secureContext: secureContextFor(target.tls.ca),
    rejectUnauthorized: verify,
    checkServerIdentity: (host, cert) =>
      target.tls.mode === 'verify-full' ? checkServerIdentity(target.host || host, cert) : undefined,
  });
  await new Promise<void>((resolve, reject) => {
    tlsSocket.once('secureConnect', () => resolve());
    tlsSocket.once('error', (err) =>
      reject(
        new UpstreamError(`TLS to the database at ${target.host}:${target.port} failed: ${err.message}`),
      ),
    );
  });
  tlsSocket.setNoDelay(true);
  return tlsSocket;
}

/** Connect and log in. `clientParameters` are the startup parameters passed on from the client. */
export async function connectUpstream(
  target: UpstreamTarget,
  clientParameters: Record<string, string>,
  timeoutMs = 10_000,
): Promise<UpstreamConnection> {
  const reads = target.tls.mode === 'disable' ? new UpstreamReads() : undefined;
  const socket = await openTransport(target, timeoutMs, reads);
  socket.write(
    serialize.startup({
      ...clientParameters,
      ...target.parameters,
      user: target.user,
      database: target.database,
    }),
  );
  const reader = new FrameReader(1 << 30);
  const parameters = new Map<string, string>();
  let backendKey: BackendKey = { processId: 0, secretKey: Buffer.alloc(4) };
  let scram: ScramClient | undefined;

  return new Promise<UpstreamConnection>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new UpstreamError('timed out logging in to the database')),
      timeoutMs,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.destroy();
      reject(err instanceof UpstreamError ? err : new UpstreamError(err.message));
    };
    const onClose = () => fail(new UpstreamError('the database closed the connection during login'));
    const onError = (err: Error) => fail(new UpstreamError(`database connection error: ${err.message}`));

    const handle = (frame: Frame): boolean => {
      switch (frame.type) {
        case 'R':
          authenticate(frame.body);
          return false;
        case 'S': {
          const [name, value] = frame.body.toString('utf8').split('\0');
          parameters.set(name!, value ?? '');
          return false;
        }
        case 'K':
          backendKey = {
            processId: frame.body.readInt32BE(0),
            secretKey: Buffer.from(frame.body.subarray(4)),
          };
          return false;
        case 'N':
          return false;
        case 'v':
          return false; // NegotiateProtocolVersion: we asked for 3.0, nothing to do.
        case 'E': {
          const fields = decodeFields(frame.body);
          throw new UpstreamError(
            `the database refused the gateway's login: ${fields.M ?? 'unknown error'}`,
            fields.C ?? '08006',
          );
        }
        case 'Z': {
          clearTimeout(timer);
          socket.off('data', onData);
          socket.off('close', onClose);
          socket.off('error', onError);
          resolve({
            socket,
            reads,
            parameters,
            backendKey,
            status: decodeReadyForQuery(frame.body),
            leftover: reader.drain(),
          });
          return true;
        }
        default:
          throw new UpstreamError(`unexpected message "${frame.type}" from the database during login`);
      }
    };

    const authenticate = (body: Buffer) => {
      const code = body.readInt32BE(0);
      switch (code) {
        case 0: // AuthenticationOk
          return;
        case 3: // cleartext (only ever over what the operator configured; TLS is the default)
          socket.write(serialize.password(target.password));
          return;
        case 5: // md5
          socket.write(
            serialize.password(md5PasswordResponse(target.user, target.password, body.subarray(4, 8))),
          );
          return;
        case 10: {
          const mechanisms = body.subarray(4).toString('utf8').split('\0').filter(Boolean);
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            throw new UpstreamError(
              `the database offers no supported SASL mechanism (${mechanisms.join(', ')})`,
            );
          }
          scram = new ScramClient(target.password);
          socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
          return;
        }
        case 11:
          if (!scram) throw new UpstreamError('unexpected SASL continue from the database');
          socket.write(serialize.sendSCRAMClientFinalMessage(scram.final(body.subarray(4).toString('utf8'))));
          return;
        case 12:
          scram?.verifyServer(body.subarray(4).toString('utf8'));
          return;
        default:
          throw new UpstreamError(`the database asks for an unsupported authentication method (${code})`);
      }
    };

    const onData = (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) if (handle(frame)) return;
      } catch (err) {
        fail(err as Error);
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', onError);
  });
}

/** Send a CancelRequest for an upstream backend (a fresh connection, as the protocol wants). */
export async function sendUpstreamCancel(target: UpstreamTarget, key: BackendKey): Promise<void> {
  const socket = await openTransport(target, 5000);
  // length | code | process id | secret key: 16 bytes with protocol 3.0's 4-byte key (was 12: Postgres ignored it).
  const packet = Buffer.alloc(12 + key.secretKey.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(key.processId, 8);
  key.secretKey.copy(packet, 12);
  await new Promise<void>((resolve) => {
    socket.end(packet, () => resolve());
    socket.once('error', () => resolve());
  });
  socket.destroy();
}

/**
 * Run one simple query on a freshly logged-in upstream connection, before the relay owns it (the
 * session's starting settings). Returns the rows of its results as text; rejects on an error.
 * Bytes that arrive after ReadyForQuery are handed back as the connection's new leftover.
 */
export async function queryUpstream(
  conn: UpstreamConnection,
  sql: string,
  timeoutMs = 10_000,
): Promise<(string | null)[][]> {
  const socket = conn.socket;
  const reader = new FrameReader(1 << 30);
  return new Promise((resolve, reject) => {
    const rows: (string | null)[][] = [];
    let error: string | undefined;
    let code: string | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (err) reject(err);
      else resolve(rows);
    };
    const timer = setTimeout(
      () => done(new UpstreamError('timed out reading the session settings')),
      timeoutMs,
    );
    const onClose = () => done(new UpstreamError('the database closed the connection'));
    const onData = (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) {
          if (frame.type === 'D') rows.push(decodeRow(frame.body));
          else if (frame.type === 'E') {
            const fields = decodeFields(frame.body);
            error = fields.M ?? 'query failed';
            code = fields.C;
          } else if (frame.type === 'Z') {
            conn.status = decodeReadyForQuery(frame.body);
            conn.leftover = reader.drain();
            done(error ? new UpstreamError(error, code ?? '08006') : undefined);
            return;
          }
        }
      } catch (err) {
        done(err as Error);
      }
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    if (conn.leftover.length > 0) {
      const leftover = conn.leftover;
      conn.leftover = Buffer.alloc(0);
      onData(leftover);
    }
    socket.write(serialize.query(sql));
  });
}

function decodeRow(body: Buffer): (string | null)[] {
  const count = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) values.push(null);
    else {
      values.push(body.toString('utf8', offset, offset + length));
      offset += length;
    }
  }
  return values;
}
