/**
 * hoop-gateway's composition root: read the config, build every stage, start the listener.
 * The only module that picks implementations; everything else receives what it needs.
 */
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile } from '../src/shared/config/load.js';
import type { GatewayConfig } from '../src/shared/config/schema.js';
import { eventRoutes } from './approvals/events.js';
import { approvalRoutes } from './approvals/routes.js';
import { rotateKey } from './audit/rotation.js';
import { auditRoutes } from './audit/routes.js';
import { buildApprovals } from './compose/approvals.js';
import { type AuditParts, buildAudit } from './compose/audit.js';
import { buildConsole } from './compose/console.js';
import { createContext, type GatewayContext, version } from './compose/context.js';
import { buildIdentity } from './compose/identity.js';
import { type StartHooks, serve } from './compose/lifecycle.js';
import { buildMcp } from './compose/mcp.js';
import { buildNativeListener } from './compose/native.js';
import { reportDeps } from './compose/report.js';
import { buildTunnels } from './compose/sessions.js';
import { checkConfigFile } from './config/check.js';
import { identityRoutes } from './identities/routes.js';
import { healthRoutes } from './ops/routes.js';
import { createPolicyEngine } from './policy/engine.js';
import { policyRoutes } from './policy/routes.js';
import { reportRoutes } from './report/routes.js';
import { SessionRegistry } from './session/session.js';
import { loadSqlParser } from './sql/parser.js';
import { loadPlpgsqlParser } from './sql/plpgsql.js';
import { openStore } from './store/index.js';
import { coreRoutes } from './transport/core-routes.js';
import type { Route } from './transport/router.js';

const USAGE = `Usage: hoop-gateway --config gateway.yaml [--check [--connect]]
       hoop-gateway --config gateway.yaml --rotate-signing-key
       hoop-gateway --dev [--dir .hoop-dev] [--port 8443]

Options:
  -c, --config FILE   the gateway configuration (YAML); see docs/configuration.md
      --check         validate the configuration (keys, files, secrets) and exit
      --connect       with --check: also log in to each database and fetch each issuer's discovery and JWKS
      --rotate-signing-key
                      with this replica stopped: seal its audit chain, rotate the generated signing
                      key (the old public key stays trusted), record audit.key_rotated, and exit
      --dev           try it: a demo database, a dev OIDC provider and a demo policy, in one command
      --dir DIR       where --dev keeps its state (default .hoop-dev)
      --port N        --dev: the gateway's port (default 8443; the dev OIDC provider uses N+1)
  -h, --help          this help
  -v, --version       the version

Examples:
  hoop-gateway --config /etc/hoop/gateway.yaml
  PROD_DB_PASSWORD=... hoop-gateway --config gateway.yaml --check
  PROD_DB_PASSWORD=... hoop-gateway --config gateway.yaml --check --connect
  hoop-gateway --config gateway.yaml --rotate-signing-key   # stop this replica first
  hoop-gateway --dev`;

export { version };

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
      const checked = checkConfig(args.config);
      if (args.connect) {
        process.exitCode = await checkConnect(args.config, checked);
        return;
      }
      process.stdout.write(
        `${args.config}: configuration is valid (nothing was contacted: add --connect to log in to each database and reach each issuer)\n`,
      );
      return;
    }
    if (args['rotate-signing-key']) {
      await rotateSigningKeyCommand(args.config);
      return;
    }
    if (args.connect) throw new UsageError('--connect goes with --check');
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
      'rotate-signing-key': { type: 'boolean' },
      connect: { type: 'boolean' },
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

/** Everything `--check` validates, and what start-up does before opening anything (config/check.ts). */
function checkConfig(file: string): { config: GatewayConfig; passwords: Map<string, string> } {
  return checkConfigFile(file);
}

/** --rotate-signing-key: one operator action (audit/rotation.ts), then exit. */
async function rotateSigningKeyCommand(configFile: string): Promise<void> {
  const config = loadConfigFile(configFile);
  const baseDir = dirname(resolve(configFile));
  const store = await openStore(config.store, { baseDir, durability: config.audit.durability });
  try {
    const r = await rotateKey(store, config, { baseDir });
    process.stdout.write(
      `rotated the audit signing key of replica ${r.replica} (chain ${r.chain}): ${r.old.key_id} → ${r.new.key_id}\n` +
        `  new public key: ${join(store.dataDir, 'audit-signing-key.pub.pem')} (give it to auditors: hoopctl audit verify --public-key)\n` +
        `  old public key, still trusted: ${join(store.dataDir, r.retiredFile)}\n` +
        `  fingerprints: old ${r.old.fingerprint}, new ${r.new.fingerprint}\n` +
        '  other replicas that verify this chain: add the new public key to their audit.trusted_keys\n',
    );
  } finally {
    await store.close();
  }
}

/** --check --connect: one line per database and issuer; exit 1 when any is unreachable. */
async function checkConnect(file: string, checked: ReturnType<typeof checkConfig>): Promise<number> {
  const { checkConnectivity } = await import('./config/connect-check.js');
  const results = await checkConnectivity(checked.config, checked.passwords);
  for (const r of results) process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.what}: ${r.detail}\n`);
  const failed = results.filter((r) => !r.ok).length;
  process.stdout.write(
    failed
      ? `${file}: ${failed} of ${results.length} checks failed\n`
      : `${file}: configuration is valid and every database and issuer answered\n`,
  );
  return failed ? 1 : 0;
}

export type { StartHooks };

/**
 * Build every part in dependency order, then listen. Each builder (gateway/compose/) owns one concern.
 * To add a service: build it below what it needs, `ctx.services.add(name, stop)` to stop it on shutdown,
 * `ctx.readiness.add(check)` if /readyz depends on it. To add a route group: one line in `routes`.
 */
export async function startGateway(configFile: string, hooks: StartHooks = {}): Promise<void> {
  const { config, passwords } = checkConfig(configFile);
  const ctx = createContext(configFile, config, passwords);
  let audit: AuditParts | undefined;
  try {
    await loadSqlParser();
    void loadPlpgsqlParser(); // in the background: the first catalog load awaits it
    audit = await buildAudit(ctx);
    await buildAndServe(ctx, audit, hooks);
  } catch (err) {
    await abandonStart(ctx, audit, hooks);
    throw err;
  }
}

/**
 * A start that fails part-way (a port in use, the store gone) closes what it opened — listeners, services
 * and their timers, the audit log, the store — so that the process exits with the error instead of
 * running half-started.
 */
async function abandonStart(ctx: GatewayContext, audit: AuditParts | undefined, hooks: StartHooks) {
  const quietly = (what: string) => (err: Error) =>
    ctx.logger.error({ err: err.message }, `closing ${what} after the failed start failed`);
  await ctx.services.stopAll((name, err) => quietly(name)(err));
  await audit?.running.close().catch(quietly('the audit log'));
  await audit?.store.close().catch(quietly('the store'));
  await Promise.resolve(hooks.onStop?.()).catch(quietly('the dev environment'));
}

async function buildAndServe(ctx: GatewayContext, audit: AuditParts, hooks: StartHooks): Promise<void> {
  const { config } = ctx;
  const engine = createPolicyEngine(config);
  const approvals = await buildApprovals(ctx, audit, engine);
  const registry = new SessionRegistry();
  const identity = await buildIdentity(ctx, audit, registry);
  const tunnels = buildTunnels(ctx, { engine, audit, approvals, identity, registry });
  const mcp = buildMcp(ctx, { engine, audit, approvals, identity, tunnels, routes: () => routes });
  const webConsole = buildConsole(ctx, { audit, identity });
  await buildNativeListener(ctx, { tunnels, identity, registry });

  // The API, one route group per line.
  const routes: Route[] = [
    ...healthRoutes({ version: ctx.version, readiness: ctx.readiness }),
    ...coreRoutes({
      config,
      engine,
      version: ctx.version,
      grants: (issuer, subject) => approvals.grantsFor({ issuer, subject }),
    }),
    ...policyRoutes({ engine, grants: (identity) => approvals.grantsFor(identity) }),
    ...approvalRoutes(approvals),
    ...auditRoutes({ store: audit.store, log: audit.log, verify: audit.running.verify }),
    ...identityRoutes({ identities: identity.identities, roles: (who) => engine.roles(who) }),
    ...reportRoutes(reportDeps(ctx, audit)),
    ...(mcp?.routes ?? []),
    ...eventRoutes({ source: approvals, store: audit.store }),
    ...(webConsole?.routes ?? []),
  ];
  await serve(ctx, {
    routes,
    engine,
    authenticate: identity.authenticate,
    sessionToken: webConsole?.sessionToken,
    tunnels,
    registry,
    audit,
    hooks,
  });
}
