/**
 * Tunnels and sessions: the WebSocket endpoint, each session's handshake, upstream login and relay, the
 * statement gate (policy, approvals, masking, the write-ahead record) and the records of a session's life.
 * Keeps count of open tunnels (the drain waits for them) and refuses new ones while draining.
 */
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { ApprovalService } from '../approvals/service.js';
import { clip } from '../audit/auth-failures.js';
import { type CatalogSource, createCatalogSource } from '../catalog/catalog.js';
import type { SessionGate } from '../contracts/gate.js';
import { SessionMasking } from '../masking/index.js';
import { loadTokenKey } from '../masking/secret.js';
import { DRAINING_MESSAGE } from '../ops/drain.js';
import { type GatewayMetrics, noMetrics, secondsSince } from '../ops/metrics.js';
import { agentStartupParameters } from '../policy/agents.js';
import type { PolicyEngine } from '../policy/engine.js';
import { judgeStartup } from '../policy/startup.js';
import { createStatementGate } from '../session/gate/index.js';
import { runSession, type SessionHooks, type SessionInfo, type SessionRegistry } from '../session/session.js';
import { fetchCatalogRows } from '../transport/catalog-query.js';
import { refuseUpgrade, type UpgradeHandler } from '../transport/http.js';
import { createTunnelHandler, type TunnelOptions, type TunnelTarget } from '../transport/tunnel.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';
import type { IdentityParts } from './identity.js';

export interface SessionDeps {
  engine: PolicyEngine;
  audit: AuditParts;
  approvals: ApprovalService;
  identity: IdentityParts;
  registry: SessionRegistry;
}

export interface Tunnels {
  /** The upgrade handler the API listener calls after authenticating the bearer token. */
  onUpgrade: UpgradeHandler;
  /** Start a session on a byte stream that is already authenticated (the MCP server's in-process clients). */
  openSession: TunnelOptions['onStream'];
  /** What a tunnel may reach and how its stream becomes a session (the native listener reuses them). */
  options: TunnelOptions;
  /** Tunnels open now (their sessions may still be in the handshake). */
  active(): number;
  /** End every session with 57P01, wait up to `waitMs` for the tunnels to close, then cut the rest. */
  closeAll(waitMs: number): Promise<void>;
}

export function buildTunnels(ctx: GatewayContext, deps: SessionDeps): Tunnels {
  const { config, metrics } = ctx;
  const { registry, audit } = deps;
  const streams = new Set<Duplex>();
  const hooks = sessionHooks(ctx, deps);
  ctx.prometheus?.watch({
    sessionsByConnection: () => {
      const counts = new Map<string, number>();
      for (const s of registry.all())
        counts.set(s.info.connection.name, (counts.get(s.info.connection.name) ?? 0) + 1);
      return counts;
    },
  });

  const tunnelOptions: TunnelOptions = {
    connections: new Map(config.connections.map((c) => [c.name, c])),
    maxMessageBytes: config.listen.max_message_bytes,
    canReach: (identity, name) =>
      deps.engine.policiesFor(identity, name, deps.approvals.grantsFor(identity, name)).length > 0,
    // Agents with mcp_only reach databases only through /mcp, where all their guardrails apply.
    barred: (identity) => {
      const agent = deps.engine.agentFor(identity);
      return agent?.mcpOnly
        ? `agent profile "${agent.name}" reaches databases only through MCP (/mcp or hoopctl mcp)`
        : undefined;
    },
    refused: (identity, source, connection, reason) => {
      metrics.tunnelRefused('no_access');
      metrics.authFailed('no_access');
      void audit.recordQuietly({
        type: 'auth.failed',
        identity,
        source,
        // The connection name comes from the client: bounded (docs/audit.md, "Failed authentications").
        connection: clip(connection, 64),
        data: { reason: 'no_access', message: clip(reason) },
      });
    },
    onStream: (stream, target) => {
      streams.add(stream);
      metrics.tunnelOpened();
      stream.once('close', () => {
        streams.delete(stream);
        metrics.tunnelClosed();
      });
      void audit.recordQuietly({
        type: 'auth.succeeded',
        identity: target.identity,
        source: target.source,
        connection: target.connection.name,
        session: target.sessionId,
        data: { client: target.client },
      });
      startSession(ctx, deps.engine, stream, target, hooks, registry);
    },
  };
  const tunnel = createTunnelHandler(tunnelOptions);

  const onUpgrade: UpgradeHandler = (request, socket, head, identity, pending) => {
    if (ctx.drain.draining) {
      metrics.tunnelRefused('draining');
      refuseUpgrade(socket, 503, 'unavailable', DRAINING_MESSAGE);
      return;
    }
    metrics.tunnelSocket(socket as Duplex & { bytesRead: number; bytesWritten: number });
    tunnel.handler(request, socket, head, identity, pending);
  };

  return {
    onUpgrade,
    openSession: tunnelOptions.onStream,
    options: tunnelOptions,
    active: () => streams.size,
    async closeAll(waitMs) {
      for (const s of registry.all())
        s.relay.terminate({ code: '57P01', message: 'terminating connection: the gateway is shutting down' });
      const deadline = Date.now() + waitMs;
      while (streams.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const stream of streams) stream.destroy();
      tunnel.close();
    },
  };
}

function startSession(
  ctx: GatewayContext,
  engine: PolicyEngine,
  stream: Duplex,
  target: TunnelTarget,
  hooks: SessionHooks,
  registry: SessionRegistry,
): void {
  const { config, passwords } = ctx;
  void runSession(
    stream,
    target,
    {
      maxMessageBytes: config.listen.max_message_bytes,
      idleTimeoutMs: config.listen.idle_timeout,
      maxSessionMs: config.listen.max_session,
      loginTimeoutMs: config.listen.login_timeout,
      target: (c, identity) => ({
        host: c.host,
        port: c.port,
        database: c.database,
        user: c.user,
        password: passwords.get(c.name) ?? '',
        tls: c.tls,
        parameters: agentStartupParameters(engine.agentFor(identity)),
      }),
    },
    hooks,
    registry,
  ).catch((err: Error) => ctx.logger.error({ err: err.message }, 'session failed'));
}

/** What runSession asks of the rest of the gateway: the gate, and the records of a session's life. */
function sessionHooks(ctx: GatewayContext, deps: SessionDeps): SessionHooks {
  const { config, logger, metrics } = ctx;
  const { audit, approvals, identity } = deps;
  const catalogFor = catalogFactory(ctx);
  const maskingFor = maskingFactory(ctx, catalogFor);
  return {
    startup: (info, settings) =>
      judgeStartup(deps.engine, info.identity, info.connection.name, settings, {
        grants: approvals.grantsFor(info.identity, info.connection.name),
      }),
    runSettings: (info) => approvals.runSettings(info),
    openGate: async (info, session) => {
      await audit.log.append({
        type: 'session.started',
        identity: info.identity,
        source: info.source,
        connection: info.connection.name,
        session: info.id,
        data: {
          client: info.client,
          ...(info.mcp ? { mcp: info.mcp } : {}),
          ...(info.parameters ? { parameters: info.parameters } : {}),
          ...(info.applicationName ? { application_name: info.applicationName } : {}),
          ...(info.nativeUser !== undefined ? { user: info.nativeUser } : {}),
        },
      });
      metrics.sessionOpened(info.connection.name);
      const gate = createStatementGate(info, {
        session,
        catalog: (info) => catalogFor(info.connection),
        engine: deps.engine,
        log: audit.log,
        failOpen: config.audit.fail_open,
        recordRows: config.recording.max_rows,
        recordBytes: config.recording.max_bytes,
        grants: (info) => approvals.grantsFor(info.identity, info.connection.name),
        approvals,
        masking: maskingFor,
        revoked: (info) => identity.identities.isRevoked(info.identity),
        onLogError: (err) => logger.error({ err: err.message }, 'audit append failed'),
      });
      return timedGate(gate, metrics);
    },
    closed: (info, reason) => {
      void audit.recordQuietly({
        type: 'session.ended',
        identity: info.identity,
        source: info.source,
        connection: info.connection.name,
        session: info.id,
        data: { reason, duration_ms: Date.now() - info.startedAt },
      });
    },
    refused: (info, reason) => {
      metrics.authFailed('handshake');
      void audit.recordQuietly({
        type: 'auth.failed',
        identity: info.identity,
        source: info.source,
        connection: info.connection.name,
        session: info.id,
        data: { reason: 'handshake', message: reason },
      });
    },
    upstream: (info: SessionInfo, seconds, error) => {
      if (error) metrics.upstreamFailed(info.connection.name, error.sqlstate);
      else metrics.upstreamConnected(info.connection.name, seconds);
    },
  };
}

type ConnectionConfig = GatewayConfig['connections'][number];

/**
 * One catalog per upstream, read over the gateway's own connection and shared by name resolution
 * (policy) and masking lineage; loaded on first need.
 */
function catalogFactory(ctx: GatewayContext): (c: ConnectionConfig) => CatalogSource {
  const { passwords } = ctx;
  const catalogs = new Map<string, CatalogSource>();
  return (c) => {
    let catalog = catalogs.get(c.name);
    if (!catalog) {
      const target = {
        host: c.host,
        port: c.port,
        database: c.database,
        user: c.user,
        password: passwords.get(c.name) ?? '',
        tls: c.tls,
      };
      catalog = createCatalogSource({ fetch: () => fetchCatalogRows(target) });
      catalogs.set(c.name, catalog);
    }
    return catalog;
  };
}

/**
 * Masking (gateway/masking): the connection's catalog and the token mask's key. Sessions of identities
 * without masking rules never touch either.
 */
function maskingFactory(
  ctx: GatewayContext,
  catalogFor: (c: ConnectionConfig) => CatalogSource,
): (info: { connection: ConnectionConfig }) => SessionMasking {
  const { config } = ctx;
  const storeDir = 'path' in config.store ? resolve(ctx.baseDir, config.store.path) : undefined;
  const tokenKey = loadTokenKey(config.masking.token_secret_env, storeDir);
  if (tokenKey.warning) ctx.logger.warn(tokenKey.warning);
  return (info) =>
    new SessionMasking({
      catalog: catalogFor(info.connection),
      ctx: { tokenKey: tokenKey.key },
      copy: config.masking.copy,
    });
}

/** The gate, timed: how long each client message waited for its verdict (sync or async). */
function timedGate(gate: SessionGate, metrics: GatewayMetrics): SessionGate {
  if (metrics === noMetrics) return gate;
  return {
    recordRows: gate.recordRows,
    recordBytes: gate.recordBytes,
    completed: (id, outcome) => gate.completed(id, outcome),
    whenDurable: (lsn, callback) => gate.whenDurable(lsn, callback),
    recordFailed: (err) => gate.recordFailed(err),
    check(request) {
      const started = performance.now();
      const verdict = gate.check(request);
      if (!(verdict instanceof Promise)) {
        metrics.gateDuration(request.phase, secondsSince(started));
        return verdict;
      }
      return verdict.then(
        (v) => {
          metrics.gateDuration(request.phase, secondsSince(started));
          return v;
        },
        (err) => {
          metrics.gateDuration(request.phase, secondsSince(started));
          throw err;
        },
      );
    },
  };
}
