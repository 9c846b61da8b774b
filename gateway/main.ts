/**
 * hoop-gateway's composition root: read the config, build every stage, start the listener.
 * The only module that picks implementations; everything else receives what it needs.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, loadConfigFile } from '../src/shared/config/load.js';
import type { GatewayConfig } from '../src/shared/config/schema.js';
import type { Identity } from '../src/shared/identity.js';
import { createNotifier } from './approvals/notify.js';
import { approvalRoutes } from './approvals/routes.js';
import { createApprovalService } from './approvals/service.js';
import { startAudit } from './audit/index.js';
import { auditRoutes } from './audit/routes.js';
import { AuthError, createTokenVerifier } from './auth/verify.js';
import { type CatalogSource, createCatalogSource } from './catalog/catalog.js';
import { checkNamedSecrets, checkReferencedFiles, resolveConnectionPasswords } from './config/secrets.js';
import { identityRoutes } from './identities/routes.js';
import { createIdentityService } from './identities/service.js';
import { SessionMasking } from './masking/index.js';
import { loadTokenKey } from './masking/secret.js';
import { createPolicyEngine } from './policy/engine.js';
import { policyRoutes } from './policy/routes.js';
import { judgeStartup } from './policy/startup.js';
import { runSession, SessionRegistry } from './session/session.js';
import { createStatementGate } from './session/statement-gate.js';
import { loadSqlParser } from './sql/parser.js';
import { loadPlpgsqlParser } from './sql/plpgsql.js';
import { openStore } from './store/index.js';
import { coreRoutes } from './transport/core-routes.js';
import { createGatewayServer } from './transport/http.js';
import { createTunnelHandler } from './transport/tunnel.js';

const USAGE = `Usage: hoop-gateway --config gateway.yaml [--check]
       hoop-gateway --dev [--dir .hoop-dev] [--port 8443]

Options:
  -c, --config FILE   the gateway configuration (YAML); see docs/configuration.md
      --check         validate the configuration (keys, files, secrets) and exit
      --dev           try it: a demo database, a dev OIDC provider and a demo policy, in one command
      --dir DIR       where --dev keeps its state (default .hoop-dev)
      --port N        --dev: the gateway's port (default 8443; the dev OIDC provider uses N+1)
  -h, --help          this help
  -v, --version       the version

Examples:
  hoop-gateway --config /etc/hoop/gateway.yaml
  PROD_DB_PASSWORD=... hoop-gateway --config gateway.yaml --check
  hoop-gateway --dev`;

export function version(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    return JSON.parse(readFileSync(join(here, '..', '..', 'package.json'), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
}

export async function main(argv: string[]): Promise<void> {
  let args: ReturnType<typeof parseCli>;
  try {
    args = parseCli(argv.slice(2));
  } catch (err) {
    process.stderr.write(`hoop-gateway: ${(err as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (args.version) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  try {
    if (args.dev) {
      quietDevProviderWarnings();
      const { startDevEnvironment } = await import('./dev/dev.js');
      const dev = await startDevEnvironment({
        dir: resolve(args.dir ?? '.hoop-dev'),
        port: Number(args.port ?? 8443),
      });
      await startGateway(dev.configFile, { onListening: dev.printWelcome, onStop: dev.stop });
      return;
    }
    if (!args.config) throw new UsageError('give --config FILE (or --dev to try it)');
    if (args.check) {
      checkConfig(args.config);
      process.stdout.write(`${args.config}: configuration is valid\n`);
      return;
    }
    await startGateway(args.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hoop-gateway: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`hoop-gateway: ${err.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`hoop-gateway: ${(err as Error).message}\n`);
    if (process.env.HOOP_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    process.exitCode = 1;
  }
}

class UsageError extends Error {}

/**
 * The dev OIDC provider is in-memory on purpose and runs on Node 20 fine; its start-up warnings
 * about both would only alarm someone trying the demo.
 */
function quietDevProviderWarnings(): void {
  const warn = console.warn.bind(console);
  console.warn = (...args: unknown[]) => {
    if (
      typeof args[0] === 'string' &&
      /^oidc-provider WARNING: (Unsupported runtime|a quick start development-only)/.test(args[0])
    )
      return;
    warn(...args);
  };
}

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      check: { type: 'boolean' },
      dev: { type: 'boolean' },
      dir: { type: 'string' },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    strict: true,
    allowPositionals: false,
  });
  return values;
}

/** Everything `--check` validates, and what start-up does before opening anything. */
function checkConfig(file: string): { config: GatewayConfig; passwords: Map<string, string> } {
  const config = loadConfigFile(file);
  checkReferencedFiles(config, file);
  checkNamedSecrets(config, file);
  const passwords = resolveConnectionPasswords(config, file);
  return { config, passwords };
}

export interface StartHooks {
  onListening?: (address: string) => void;
  onStop?: () => Promise<void> | void;
}

export async function startGateway(configFile: string, hooks: StartHooks = {}): Promise<void> {
  const { config, passwords } = checkConfig(configFile);
  const logger = pino(
    { name: 'hoop-gateway', level: process.env.HOOP_LOG_LEVEL ?? 'info' },
    pino.destination(2),
  );
  const gatewayVersion = version();

  await loadSqlParser();
  void loadPlpgsqlParser(); // in the background: the first catalog load awaits it
  const engine = createPolicyEngine(config);
  const verifier = createTokenVerifier(config.identity.issuers);
  const storeDir = 'path' in config.store ? resolve(dirname(configFile), config.store.path) : undefined;
  const store = await openStore(config.store, {
    baseDir: dirname(resolve(configFile)),
    durability: config.audit.durability,
  });
  const audit = await startAudit(store, config, {
    baseDir: dirname(resolve(configFile)),
    onError: (err) => logger.error({ err: err.message }, 'audit background task failed'),
  });
  const auditLog = audit.log;
  if (config.audit.fail_open) {
    logger.warn('audit.fail_open is true: statements will run even when the audit log cannot be written');
    process.stderr.write(
      '\n*** WARNING: audit.fail_open is on — statements may run UNRECORDED if the store fails ***\n\n',
    );
  }
  await auditLog.append({
    type: 'gateway.started',
    data: {
      version: gatewayVersion,
      fail_open: config.audit.fail_open,
      connections: config.connections.map((c) => c.name),
    },
  });

  const connections = new Map(config.connections.map((c) => [c.name, c]));
  const registry = new SessionRegistry();
  // Masking (gateway/masking): one catalog per upstream, read over the gateway's own connection; the
  // token mask's key. Sessions of identities without masking rules never touch either.
  const tokenKey = loadTokenKey(config.masking.token_secret_env, storeDir);
  if (tokenKey.warning) logger.warn(tokenKey.warning);
  const catalogs = new Map<string, CatalogSource>();
  // The same catalog serves name resolution (policy) and masking lineage.
  const catalogFor = (c: GatewayConfig['connections'][number]) => {
    let catalog = catalogs.get(c.name);
    if (!catalog) {
      catalog = createCatalogSource({
        host: c.host,
        port: c.port,
        database: c.database,
        user: c.user,
        password: passwords.get(c.name) ?? '',
        tls: c.tls,
      });
      catalogs.set(c.name, catalog);
    }
    return catalog;
  };
  const maskingFor = (info: { connection: GatewayConfig['connections'][number] }) =>
    new SessionMasking({
      catalog: catalogFor(info.connection),
      ctx: { tokenKey: tokenKey.key },
      copy: config.masking.copy,
    });
  // Approval requests and time-boxed grants (gateway/approvals): held statements, decisions, expiry, webhooks.
  const approvals = createApprovalService({
    store,
    log: auditLog,
    engine,
    config,
    notifier: createNotifier(config.notify.webhooks, {
      onError: (url, err) => logger.warn({ url, err: err.message }, 'notify webhook failed'),
    }),
    onError: (err) => logger.error({ err: err.message }, 'approvals background task failed'),
  });
  await approvals.start();

  const recordQuietly = (input: Parameters<typeof auditLog.append>[0]) =>
    auditLog.append(input).catch((err: Error) => logger.error({ err: err.message }, 'audit append failed'));

  // Identities seen, and revocation: a cache refreshed from the store, so replicas agree within seconds.
  const identities = createIdentityService({
    store,
    record: (input) => auditLog.append(input),
    policies: config.policies,
    issuers: config.identity.issuers.map((i) => i.issuer),
    terminate: (issuer, subject, message) => registry.terminateSubject(issuer, subject, message),
    onError: (err) => logger.error({ err: err.message }, 'identity store failed'),
  });
  await identities.start();

  const authenticate = async (token: string, source: string): Promise<Identity> => {
    let identity: Identity | undefined;
    try {
      identity = await verifier.verify(token);
      // A revoked identity is refused even with a valid token, until an admin restores it.
      identities.admit(identity);
      await identities.seen(identity);
      return identity;
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'error';
      await recordQuietly({
        type: 'auth.failed',
        identity,
        source,
        data: { reason, message: (err as Error).message },
      });
      throw err;
    }
  };

  const tunnel = createTunnelHandler({
    connections,
    maxMessageBytes: config.listen.max_message_bytes,
    canReach: (identity, name) =>
      engine.policiesFor(identity, name, approvals.grantsFor(identity, name)).length > 0,
    refused: (identity, source, connection, reason) => {
      void recordQuietly({
        type: 'auth.failed',
        identity,
        source,
        connection,
        data: { reason: 'no_access', message: reason },
      });
    },
    onStream: (stream, target) => {
      void recordQuietly({
        type: 'auth.succeeded',
        identity: target.identity,
        source: target.source,
        connection: target.connection.name,
        session: target.sessionId,
        data: { client: target.client },
      });
      void runSession(
        stream,
        target,
        {
          maxMessageBytes: config.listen.max_message_bytes,
          idleTimeoutMs: config.listen.idle_timeout,
          maxSessionMs: config.listen.max_session,
          target: (c) => ({
            host: c.host,
            port: c.port,
            database: c.database,
            user: c.user,
            password: passwords.get(c.name) ?? '',
            tls: c.tls,
          }),
        },
        {
          startup: (info, settings) =>
            judgeStartup(engine, info.identity, info.connection.name, settings, {
              grants: approvals.grantsFor(info.identity, info.connection.name),
            }),
          openGate: async (info) => {
            await auditLog.append({
              type: 'session.started',
              identity: info.identity,
              source: info.source,
              connection: info.connection.name,
              session: info.id,
              data: { client: info.client, parameters: info.parameters },
            });
            return createStatementGate(info, {
              catalog: (info) => catalogFor(info.connection),
              engine,
              log: auditLog,
              failOpen: config.audit.fail_open,
              recordRows: config.recording.max_rows,
              recordBytes: config.recording.max_bytes,
              grants: (info) => approvals.grantsFor(info.identity, info.connection.name),
              approvals,
              masking: maskingFor,
              revoked: (info) => identities.isRevoked(info.identity),
              onLogError: (err) => logger.error({ err: err.message }, 'audit append failed'),
            });
          },
          closed: (info, reason) => {
            void recordQuietly({
              type: 'session.ended',
              identity: info.identity,
              source: info.source,
              connection: info.connection.name,
              session: info.id,
              data: { reason, duration_ms: Date.now() - info.startedAt },
            });
          },
          refused: (info, reason) => {
            void recordQuietly({
              type: 'auth.failed',
              identity: info.identity,
              source: info.source,
              connection: info.connection.name,
              session: info.id,
              data: { reason: 'handshake', message: reason },
            });
          },
        },
        registry,
      ).catch((err: Error) => logger.error({ err: err.message }, 'session failed'));
    },
  });

  const routes = [
    ...coreRoutes({
      config,
      engine,
      version: gatewayVersion,
      grants: (issuer, subject) => approvals.grantsFor({ issuer, subject }),
    }),
    ...policyRoutes({ engine, grants: (identity) => approvals.grantsFor(identity) }),
    ...approvalRoutes(approvals),
    ...auditRoutes({ store, log: auditLog }),
    ...identityRoutes({ identities, roles: (identity) => engine.roles(identity) }),
  ];
  const server = createGatewayServer(
    config.listen,
    routes,
    {
      authenticate: (token, source) => authenticate(token, source),
      allowed: (identity, access) => {
        if (access === 'public' || access === 'identity') return true;
        return engine.roles(identity)[access];
      },
    },
    tunnel.handler,
    (message, fields) => logger.error(fields ?? {}, message),
  );

  const [host, portText] = splitAddress(config.listen.address);
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${config.listen.address}: ${err.code ?? err.message}`)),
    );
    server.listen(Number(portText), host, () => resolveListen());
  });
  const scheme = config.listen.tls ? 'https' : 'http';
  const address = `${scheme}://${config.listen.address}`;
  logger.info(
    { address, connections: [...connections.keys()], store: storeDir ?? 'postgres' },
    'hoop-gateway listening',
  );
  hooks.onListening?.(address);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    server.close();
    identities.stop();
    approvals.stop();
    for (const s of registry.all())
      s.relay.terminate({ code: '57P01', message: 'terminating connection: the gateway is shutting down' });
    tunnel.close();
    await auditLog.append({ type: 'gateway.stopped', data: { signal } }).catch(() => {});
    await audit.close().catch(() => {});
    await store.close().catch(() => {});
    await hooks.onStop?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function splitAddress(address: string): [string, string] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[|\]$/g, ''), address.slice(at + 1)];
}
