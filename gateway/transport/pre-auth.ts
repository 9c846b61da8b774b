/**
 * The HTTP listener's bound on connections that have not authenticated: a place is taken when a
 * connection opens (after TLS), given back when its first request has arrived — its head, and its
 * body if it has one (an API request: its own auth is per request) — or, for a tunnel upgrade, when the tunnel's session has logged in. Past
 * `max` a new connection gets 503 with Retry-After at once. A connection still holding its place at
 * the deadline (TCP connect + login_timeout) is cut; a tunnel's startup enforces the same deadline.
 * When the places are full, a source holding fewer of them takes one from the source holding the most
 * (places-by-source.ts): one source cannot keep every other out.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PlacesBySource, sourceKey } from './places-by-source.js';

/** What a connection past the cap is told; clients print the JSON message. */
export const TOO_MANY_LOGINS = 'too many connections are authenticating at once; try again';

export interface PreAuthPlace {
  /** Still counted (not released)? */
  readonly holding: boolean;
  /** When the connection must have logged in (Date.now() ms). */
  deadline: number;
  /** Give the place back (idempotent): the connection authenticated, or went away. */
  release(): void;
  /** Stop the listener's own timer: a later stage enforces the deadline (the tunnel's startup). */
  handOver(): void;
}

export interface PreAuthOptions {
  max: number;
  timeoutMs: number;
}

/** Tracks the places of one server's sockets. */
export interface PreAuthLimit {
  /**
   * The socket's place for an upgrade: the one it holds, or a new one (a keep-alive socket whose
   * first request was an API call); undefined past the cap.
   */
  claim(socket: Duplex): PreAuthPlace | undefined;
  /** Came past the cap: its request (or upgrade) is answered 503 with Retry-After. */
  refused(socket: Duplex): boolean;
  /** Connections holding a place now. */
  size(): number;
}

/**
 * Retry-After of a refusal: 503, not 429, as the gateway as a whole is full, not this client over a quota.
 * One second: a burst of honest logins (a pool opening its connections) clears well within it.
 */
export const RETRY_AFTER_SECONDS = 1;
/** How long a refused connection may take to send the request head its 503 answers. */
const REFUSED_HEAD_WAIT_MS = 5_000;

export function limitUnauthenticated(server: Server, options: PreAuthOptions, tls: boolean): PreAuthLimit {
  const places = new WeakMap<Duplex, PreAuthPlace>();
  const refused = new WeakSet<Duplex>();
  const bySource = new PlacesBySource<Duplex>(options.max);
  /** A place for the socket, maybe taken from the source holding the most; false past the cap. */
  const take = (socket: Duplex): boolean => {
    const source = sourceKey((socket as Socket).remoteAddress);
    const taken = bySource.take(source, socket);
    if (!taken.ok) return false;
    taken.evict?.destroy();
    places.set(
      socket,
      takePlace(socket, options.timeoutMs, () => bySource.release(source, socket)),
    );
    return true;
  };
  const admit = (socket: Duplex) => {
    if (take(socket)) return;
    refused.add(socket);
    // Answered when its request head comes; one that does not come soon is cut off.
    setTimeout(() => socket.destroy(), Math.min(options.timeoutMs, REFUSED_HEAD_WAIT_MS)).unref();
  };
  const claim = (socket: Duplex) => {
    const place = places.get(socket);
    if (place?.holding) return place;
    if (refused.has(socket) || !take(socket)) return undefined;
    return places.get(socket);
  };
  // After TLS (the handshake is bounded by handshakeTimeout): a refusal must be readable as HTTP.
  server.on(tls ? 'secureConnection' : 'connection', admit);
  // An API request's head was read: its auth is per request. A body still counts as unauthenticated
  // until it has all arrived (within the same deadline): a body trickled a byte a second would
  // otherwise hold the socket uncounted until requestTimeout.
  server.prependListener('request', (request: IncomingMessage) => {
    const place = places.get(request.socket);
    if (!place?.holding) return;
    if (!hasBody(request)) {
      place.release();
      return;
    }
    // 'end' comes once the body is read: by the handler, or by Node discarding what it left unread.
    request.once('end', place.release);
  });
  return {
    claim,
    refused: (socket) => refused.has(socket),
    size: () => bySource.size,
  };
}

/** The request has a body to wait for (RFC 9112 §6.3: Transfer-Encoding, or a Content-Length above 0). */
function hasBody(request: IncomingMessage): boolean {
  if (request.headers['transfer-encoding'] !== undefined) return true;
  const length = request.headers['content-length'];
  return length !== undefined && length !== '0';
}

function takePlace(socket: Duplex, timeoutMs: number, free: () => void): PreAuthPlace {
  let holding = true;
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  const release = () => {
    clearTimeout(timer);
    if (holding) free();
    holding = false;
  };
  socket.once('close', release);
  return {
    get holding() {
      return holding;
    },
    deadline: Date.now() + timeoutMs,
    release,
    handOver: () => clearTimeout(timer),
  };
}
