/**
 * The CLI end of the tunnel: one WebSocket per Postgres client connection, to
 * `<gateway>/v1/tunnel/<connection>`, carrying the protocol bytes as binary messages.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocket } from 'ws';
import { TUNNEL_HEADERS, TUNNEL_PATH } from '../shared/api.js';
import { CliError, ExitCode } from '../shared/errors.js';
import type { GatewayTarget } from './api.js';

export interface TunnelOptions {
  target: GatewayTarget;
  connection: string;
  token: string;
  /** The one-time password the local client must present; omitted when the CLI itself is the client. */
  localPassword?: string;
  client: 'connect' | 'exec';
  /** exec --approval ID: run the statement this approval request approved. */
  approval?: string;
  /** How long to wait for approvals, in ms, or `none` (exec --no-wait). */
  approvalWait?: string;
}

/** The tunnel's byte stream, and the gateway's id for the session (for the audit trail). */
export type TunnelStream = Duplex & { sessionId?: string };

const caCache = new Map<string, Buffer>();

/** Open a tunnel; resolves with a byte stream once the gateway accepted it, or rejects with a CliError. */
export async function openTunnel(options: TunnelOptions): Promise<TunnelStream> {
  const { ws, sessionId } = await openTunnelSocket(options);
  const stream: TunnelStream = createWebSocketStream(ws, { highWaterMark: 1 << 20 });
  stream.sessionId = sessionId;
  return stream;
}

/** How long a tunnel keeps retrying while the gateway answers 503 (too many logins at once). */
const BUSY_RETRY_FOR_MS = 15_000;

/**
 * Open a tunnel and hand back the open WebSocket itself (hoopctl connect relays its messages directly,
 * without a stream layer on top), or reject with a CliError. A gateway that is busy with other logins
 * answers 503 with Retry-After (a draining one 503 without it): the tunnel waits that long (with jitter, so a pool's connections do not
 * come back together) and tries again, for up to BUSY_RETRY_FOR_MS.
 */
export async function openTunnelSocket(
  options: TunnelOptions,
): Promise<{ ws: WebSocket; sessionId?: string }> {
  const deadline = Date.now() + BUSY_RETRY_FOR_MS;
  for (;;) {
    try {
      return await attemptTunnel(options);
    } catch (err) {
      if (!(err instanceof GatewayBusy)) throw err;
      const waitMs = err.retryAfterMs * (1 + Math.random() / 2);
      if (Date.now() + waitMs > deadline) throw err.refusal;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/** A 503 refusal of the upgrade: the gateway is full for now, not refusing this client. */
class GatewayBusy extends Error {
  constructor(
    readonly refusal: CliError,
    readonly retryAfterMs: number,
  ) {
    super(refusal.message);
  }
}

/** Seconds of a Retry-After header, bounded to [0.1 s, 5 s]; 1 s when it is a date. */
function retryAfterMs(header: string | string[]): number {
  const seconds = Number(Array.isArray(header) ? header[0] : header);
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0.1), 5) * 1000 : 1000;
}

function attemptTunnel(options: TunnelOptions): Promise<{ ws: WebSocket; sessionId?: string }> {
  const url = new URL(`${TUNNEL_PATH}${encodeURIComponent(options.connection)}`, options.target.url);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const headers: Record<string, string> = {
    authorization: `Bearer ${options.token}`,
    [TUNNEL_HEADERS.client]: options.client,
  };
  if (options.localPassword) headers[TUNNEL_HEADERS.localPassword] = options.localPassword;
  if (options.approval) headers[TUNNEL_HEADERS.approval] = options.approval;
  if (options.approvalWait) headers[TUNNEL_HEADERS.approvalWait] = options.approvalWait;
  let ca: Buffer | undefined;
  if (options.target.caFile) {
    ca = caCache.get(options.target.caFile) ?? readFileSync(options.target.caFile);
    caCache.set(options.target.caFile, ca);
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ca, perMessageDeflate: false, maxPayload: 1 << 30 });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let message = `the gateway refused the tunnel (HTTP ${res.statusCode})`;
        try {
          message = JSON.parse(Buffer.concat(chunks).toString('utf8')).error.message ?? message;
        } catch {
          // Not our JSON: keep the status line.
        }
        const code =
          res.statusCode === 401
            ? ExitCode.notAuthenticated
            : res.statusCode === 403 || res.statusCode === 404
              ? ExitCode.denied
              : ExitCode.error;
        const refusal = new CliError(
          res.statusCode === 401 ? `not authenticated: ${message}` : message,
          code,
        );
        // Only a 503 that says when to come back is waited out (a draining gateway's does not).
        const retryAfter = res.headers['retry-after'];
        const busy = res.statusCode === 503 && retryAfter !== undefined;
        reject(busy ? new GatewayBusy(refusal, retryAfterMs(retryAfter)) : refusal);
      });
    });
    ws.once('error', (err) =>
      reject(new CliError(`cannot reach the gateway at ${options.target.url}: ${err.message}`)),
    );
    let sessionId: string | undefined;
    ws.once('upgrade', (res) => {
      const header = res.headers[TUNNEL_HEADERS.session];
      sessionId = typeof header === 'string' ? header : undefined;
    });
    ws.once('open', () => resolve({ ws, sessionId }));
  });
}
