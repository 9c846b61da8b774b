/**
 * The native PostgreSQL listener (`listen.postgres`, off unless set): libpq clients straight to the
 * gateway, an access token as the password (session/native.ts), the transport settled by
 * transport/pg-listener.ts. Its sessions are the tunnel's own (same gate, records, drain); it stops
 * accepting when the drain begins and closes with the other services.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { createSecureContext } from 'node:tls';
import { isLoopbackAddress } from '../../src/shared/config/schema.js';
import { DRAINING_MESSAGE } from '../ops/drain.js';
import { errorResponse } from '../pgwire/backend.js';
import { acceptNativeClient } from '../session/native.js';
import { cancelSession, type SessionRegistry } from '../session/session.js';
import { createPgListener } from '../transport/pg-listener.js';
import type { GatewayContext } from './context.js';
import type { IdentityParts } from './identity.js';
import type { Tunnels } from './sessions.js';

export async function buildNativeListener(
  ctx: GatewayContext,
  deps: { tunnels: Tunnels; identity: IdentityParts; registry: SessionRegistry },
): Promise<Server | undefined> {
  const { listen } = ctx.config;
  const address = listen.postgres;
  if (!address) return undefined;
  const tunnel = deps.tunnels.options;
  // No identity comes with a CancelRequest: the key alone is the credential, as in PostgreSQL, and it
  // reaches only sessions of this listener.
  const cancel = (processId: number, secret: Buffer) =>
    void cancelSession(deps.registry, processId, secret, (info) => info.client === 'native');
  const server = createPgListener({
    tls: listen.tls
      ? createSecureContext({ cert: readFileSync(listen.tls.cert), key: readFileSync(listen.tls.key) })
      : undefined,
    allowPlain: listen.insecure_loopback && isLoopbackAddress(address),
    timeoutMs: listen.login_timeout,
    maxUnauthenticated: listen.max_unauthenticated,
    onCancel: cancel,
    onConnection: (stream, meta) => {
      if (ctx.drain.draining) {
        ctx.metrics.tunnelRefused('draining');
        stream.end(errorResponse({ severity: 'FATAL', code: '57P03', message: `hoop: ${DRAINING_MESSAGE}` }));
        return;
      }
      acceptNativeClient(stream, meta, {
        connections: tunnel.connections,
        maxMessageBytes: tunnel.maxMessageBytes,
        authenticate: deps.identity.authenticate,
        barred: tunnel.barred,
        canReach: tunnel.canReach,
        refused: tunnel.refused,
        cancel,
        open: tunnel.onStream,
      });
    },
  });
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`listen.postgres: cannot listen on ${address}: ${err.code ?? err.message}`)),
    );
    server.listen(Number(address.slice(at + 1)), host, () => resolve());
  });
  ctx.services.add('native listener', () => {
    server.close();
  });
  ctx.logger.info({ address }, 'native PostgreSQL listener ready');
  return server;
}
