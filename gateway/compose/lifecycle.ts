/**
 * Listening and stopping. Opens the API listener (and the diagnostics listener when configured), then
 * waits for a signal. SIGTERM drains: not ready at once, no new tunnels, open sessions get
 * `shutdown.grace`, then 57P01; SIGINT (Ctrl-C) and a second signal skip the grace. Then the services stop,
 * `gateway.stopped` is recorded, the last batch is committed and a checkpoint signed, and the process exits.
 */
import type { Server } from 'node:http';
import type { Identity } from '../../src/shared/identity.js';
import { createDiagnosticsServer } from '../ops/diagnostics.js';
import type { DrainOutcome } from '../ops/drain.js';
import type { PolicyEngine } from '../policy/engine.js';
import type { SessionRegistry } from '../session/session.js';
import { type Authenticator, createGatewayServer } from '../transport/http.js';
import type { Route } from '../transport/router.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';
import type { Tunnels } from './sessions.js';

export interface StartHooks {
  onListening?: (address: string) => void;
  onStop?: () => Promise<void> | void;
}

export interface ServeDeps {
  routes: Route[];
  engine: PolicyEngine;
  authenticate(token: string, source: string): Promise<Identity>;
  /** The web console's session cookie → a bearer token (absent without the console). */
  sessionToken?: Authenticator['sessionToken'];
  tunnels: Tunnels;
  registry: SessionRegistry;
  audit: AuditParts;
  hooks: StartHooks;
}

/** How long sessions ended with 57P01 get to send it and close before their sockets are cut (ms). */
const TERMINATE_WAIT_MS = 2_000;

export async function serve(ctx: GatewayContext, deps: ServeDeps): Promise<void> {
  const { config, logger } = ctx;
  const server = createGatewayServer(
    config.listen,
    deps.routes,
    {
      authenticate: deps.authenticate,
      allowed: (identity, access) =>
        access === 'public' || access === 'identity' ? true : deps.engine.roles(identity)[access],
      sessionToken: deps.sessionToken,
    },
    deps.tunnels.onUpgrade,
    (message, fields) => logger.error(fields ?? {}, message),
  );
  await listen(server, config.listen.address, 'listen.address');
  let diagnostics: Server | undefined;
  try {
    diagnostics = config.diagnostics ? await startDiagnostics(ctx, config.diagnostics) : undefined;
  } catch (err) {
    // Not half-started: the caller (main.ts) closes the rest of what start-up opened and exits 1.
    server.close();
    server.closeAllConnections();
    throw err;
  }

  const scheme = config.listen.tls ? 'https' : 'http';
  const address = `${scheme}://${config.listen.address}`;
  ctx.prometheus?.watch({ ready: () => ctx.readiness.ready, draining: () => ctx.drain.draining });
  logger.info(
    {
      address,
      diagnostics: config.diagnostics?.listen,
      connections: config.connections.map((c) => c.name),
      store: 'path' in config.store ? config.store.path : 'postgres',
    },
    'hoop-gateway listening',
  );
  deps.hooks.onListening?.(address);

  let stopping: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping || signal === 'SIGINT') ctx.drain.skipGrace();
    stopping ??= shutdown(ctx, deps, { server, diagnostics }, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function shutdown(
  ctx: GatewayContext,
  deps: ServeDeps,
  servers: { server: Server; diagnostics?: Server },
  signal: NodeJS.Signals,
): Promise<void> {
  const { logger, drain } = ctx;
  const graceMs = ctx.config.shutdown.grace;
  drain.begin();
  const open = deps.tunnels.active();
  logger.info({ signal, sessions: open, grace_ms: graceMs }, 'draining: not ready, refusing new tunnels');
  const outcome: DrainOutcome = await drain.waitForSessions(() => deps.tunnels.active(), graceMs);
  const ended = deps.registry.size;
  if (ended > 0) logger.info({ outcome, sessions: ended }, 'ending the remaining sessions (57P01)');
  await deps.tunnels.closeAll(TERMINATE_WAIT_MS);
  servers.server.close();
  await ctx.services.stopAll((name, err) => logger.error({ err: err.message }, `stopping ${name} failed`));
  await deps.audit.log
    .append({ type: 'gateway.stopped', data: { signal, drain: outcome, sessions_ended: ended } })
    .catch(() => {});
  // The last batch is committed and the head sealed with a signed checkpoint before the store closes.
  await deps.audit.running
    .close()
    .catch((err: Error) => logger.error({ err: err.message }, 'closing the audit log failed'));
  await deps.audit.store.close().catch(() => {});
  servers.diagnostics?.close();
  await deps.hooks.onStop?.();
  logger.info({ signal, drain: outcome }, 'stopped');
  process.exit(0);
}

async function startDiagnostics(
  ctx: GatewayContext,
  options: NonNullable<GatewayContext['config']['diagnostics']>,
): Promise<Server> {
  const server = createDiagnosticsServer({
    version: ctx.version,
    readiness: ctx.readiness,
    metrics: ctx.prometheus,
    tls: options.tls,
    onError: (err) => ctx.logger.error({ err: err.message }, 'diagnostics handler failed'),
  });
  await listen(server, options.listen, 'diagnostics.listen');
  return server;
}

function listen(server: Server, address: string, key: string): Promise<void> {
  const [host, port] = splitAddress(address);
  return new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`${key}: cannot listen on ${address}: ${err.code ?? err.message}`)),
    );
    server.listen(Number(port), host, () => resolve());
  });
}

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), address.slice(at + 1)];
}
