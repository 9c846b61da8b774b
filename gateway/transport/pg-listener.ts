/**
 * The native PostgreSQL listener (`listen.postgres`): a TCP server libpq clients connect to directly,
 * without `hoopctl connect`. This module settles the transport only, before any startup packet is read:
 *
 * - SSLRequest → 'S' and the connection becomes TLS with the gateway's certificate (or 'N' where the
 *   listener has no TLS: plain loopback only). Bytes the client sent after the SSLRequest, before the
 *   TLS handshake, end the connection: they would be unencrypted data taken for encrypted (CVE-2021-23214).
 * - GSSENCRequest → 'N' (GSS encryption would blind inspection); the client goes on with SSL or plain.
 * - A plain StartupMessage is accepted only where plain is allowed (a loopback address with
 *   `insecure_loopback`); elsewhere the client gets FATAL 28000 saying TLS is required.
 * - A plain CancelRequest is handed to `onCancel` (libpq sends cancels unencrypted).
 *
 * What follows — the login with an access token, the session — is the caller's (session/native.ts).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { errorResponse } from '../pgwire/backend.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from '../pgwire/frontend.js';
import { PlacesBySource, sourceKey } from './places-by-source.js';

export interface PgListenerOptions {
  /** The gateway's certificate; without it SSLRequest is answered 'N' (allowed on loopback only). */
  tls?: SecureContext;
  /** May a client speak without TLS here (a loopback address with insecure_loopback)? */
  allowPlain: boolean;
  /**
   * A connection whose transport is settled (TLS, or plain where allowed), its startup packet not yet
   * read. Attach the stream's 'data' listener before returning: the stream is resumed right after.
   */
  onConnection(
    stream: Socket,
    meta: { source: string; tls: boolean; deadline: number; loggedIn: () => void },
  ): void;
  /** A CancelRequest that came without TLS. */
  onCancel(processId: number, secretKey: Buffer): void;
  /**
   * Longest time from TCP connect to a settled transport (default 30 s). It is the login's too:
   * `meta.deadline` is TCP connect plus this, so the whole unauthenticated phase has one bound.
   */
  timeoutMs?: number;
  /** Connections not yet logged in at once; more are refused (FATAL 53300). Default 256. */
  maxUnauthenticated?: number;
}

/**
 * Each unauthenticated connection holds a socket, buffers and a TLS state for up to the login
 * deadline; this bounds what a client with no credential can hold. Logged-in sessions do not count.
 */
const MAX_UNAUTHENTICATED = 256;

/** PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_PACKET = 10_000;

const TLS_REQUIRED =
  'TLS is required on this listener: connect with sslmode=verify-full (or require), and the access token as the password';

export function createPgListener(options: PgListenerOptions): Server {
  const places = new PlacesBySource<Socket>(options.maxUnauthenticated ?? MAX_UNAUTHENTICATED);
  return createServer((socket) => {
    // When full, a source holding fewer places takes one from the source holding the most.
    const source = sourceKey(socket.remoteAddress);
    const taken = places.take(source, socket);
    if (!taken.ok) {
      // As PostgreSQL at max_connections; the client reads it whatever it sent first.
      socket.on('error', () => socket.destroy());
      // Read and drop what the client sends, so its FIN is seen and the socket closes; a client that
      // never closes its side is cut off shortly after.
      socket.resume();
      setTimeout(() => socket.destroy(), 5_000).unref();
      socket.end(
        errorResponse({
          severity: 'FATAL',
          code: '53300',
          message: 'hoop: too many connections are logging in at once; try again',
        }),
      );
      return;
    }
    taken.evict?.destroy();
    const release = () => places.release(source, socket);
    socket.once('close', release);
    settleTransport(socket, options, release);
  });
}

function sourceOf(socket: Socket): string {
  const host = socket.remoteAddress ?? 'unknown';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

/** Read the first packets of a fresh connection until the transport is decided. */
function settleTransport(socket: Socket, options: PgListenerOptions, loggedIn: () => void): void {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 60_000);
  const source = sourceOf(socket);
  let buffered: Buffer = Buffer.alloc(0);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  const fail = (code: string, message: string) => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.end(errorResponse({ severity: 'FATAL', code, message: `hoop: ${message}` }));
  };
  const handOver = (stream: Socket, tls: boolean) => {
    clearTimeout(timer);
    options.onConnection(stream, { source, tls, deadline, loggedIn });
    stream.resume();
  };

  const onPacket = (code: number, packet: Buffer, rest: Buffer): boolean => {
    if (code === SSL_REQUEST_CODE) {
      if (!options.tls) {
        socket.write('N');
        return true;
      }
      if (rest.length > 0) {
        fail('08P01', 'unencrypted data after SSLRequest');
        return false;
      }
      socket.off('data', onData);
      socket.pause();
      socket.write('S');
      const secure = new TLSSocket(socket, { isServer: true, secureContext: options.tls });
      secure.once('secure', () => handOver(secure, true));
      secure.on('error', () => {
        clearTimeout(timer);
        secure.destroy();
      });
      return false;
    }
    if (code === GSSENC_REQUEST_CODE) {
      socket.write('N');
      return true;
    }
    if (code === CANCEL_REQUEST_CODE && packet.length >= 16) {
      clearTimeout(timer);
      socket.off('data', onData);
      options.onCancel(packet.readInt32BE(8), Buffer.from(packet.subarray(12)));
      socket.end();
      return false;
    }
    if (!options.allowPlain) {
      fail('28000', TLS_REQUIRED);
      return false;
    }
    // A plain StartupMessage where plain is allowed: the session reads it again from the start.
    socket.off('data', onData);
    socket.pause();
    socket.unshift(Buffer.concat([packet, rest]));
    handOver(socket, false);
    return false;
  };

  const onData = (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    while (buffered.length >= 8) {
      const length = buffered.readInt32BE(0);
      if (length < 8 || length > MAX_STARTUP_PACKET) {
        fail('08P01', `invalid startup packet length ${length}`);
        return;
      }
      if (buffered.length < length) return;
      const packet = buffered.subarray(0, length);
      buffered = buffered.subarray(length);
      if (!onPacket(packet.readInt32BE(4), packet, buffered)) return;
    }
  };
  socket.on('data', onData);
  socket.on('error', () => {
    clearTimeout(timer);
    socket.destroy();
  });
}
