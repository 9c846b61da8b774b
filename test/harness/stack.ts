/**
 * The whole product as separate real processes, for integration tests: a throwaway PostgreSQL
 * seeded like the demo, the dev OIDC provider, `hoop-gateway` (TLS with a private CA by default)
 * and `hoopctl` run as a child process per command, each user with their own HOOPCTL_HOME.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localGatewayConfig } from '../../gateway/dev/config.js';
import { SEED_SQL } from '../../gateway/dev/dev.js';
import { makeCerts, type TestCerts } from './certs.js';
import { completeDeviceLogin, DEV_USERS, startTestIdp } from './idp.js';
import { freePort } from './ports.js';
import { type PgOptions, type PgServer, startPostgres } from './postgres.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOOPCTL = join(ROOT, 'bin', 'hoopctl');
export const GATEWAY = join(ROOT, 'bin', 'hoop-gateway');

/** The SPEC.md example's policies, as the tests' default. */
export const DEFAULT_POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session, copy-in, copy-out] }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: auditors
    groups: [audit]
    audit: true
`;

export interface StackOptions {
  /** YAML for `policies:` (default DEFAULT_POLICIES). */
  policies?: string;
  /** Extra top-level YAML appended to the config. */
  extraConfig?: string;
  /** Serve the gateway over TLS with a private CA (default true). */
  tls?: boolean;
  /** Postgres settings (e.g. log_statement). */
  pgSettings?: Record<string, string>;
  /** Lifetime of the IdP's access tokens, in seconds (default 600). */
  accessTokenTtl?: number;
  /** How Postgres authenticates TCP logins and whether it serves TLS (see gateway/dev/postgres.ts). */
  pgAuth?: PgOptions['authMethod'];
  pgTls?: boolean;
  /** YAML flow mapping for connections[0].tls (default `{ mode: disable }`); `$CA` is replaced by the test CA file. */
  connectionTls?: string;
  /** The `store:` section (YAML, two-space indented lines under it); default the embedded `path: ./hoop-data`. */
  store?: string;
  /** listen.* extra keys (YAML lines, indented two spaces). */
  listenExtra?: string;
  /**
   * More identity.issuers[] entries (YAML list items indented four spaces), given the gateway's URL,
   * which is the audience tokens must carry; e.g. a workload issuer from startWorkloadIssuer().
   */
  extraIssuers?: (audience: string) => string;
  /** HOOP_REPLICA_ID of the first gateway (replicas on one PostgreSQL store each need their own). */
  replicaId?: string;
}

/** One more gateway process on the stack's configuration and store (startReplica). */
export interface Replica {
  id: string;
  url: string;
  log(): string;
  /** Send a signal (default SIGKILL) and wait for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Tunnel {
  url: string;
  port: number;
  password: string;
  stop(): void;
}

export interface Stack {
  pg: PgServer;
  certs?: TestCerts;
  gatewayUrl: string;
  configFile: string;
  dbPassword: string;
  gatewayLog(): string;
  /** Run hoopctl as `home`'s user; resolves when it exits. */
  cli(
    home: string,
    args: string[],
    options?: { env?: Record<string, string>; input?: string; timeoutMs?: number },
  ): Promise<CliResult>;
  /** A fresh HOOPCTL_HOME, logged in through the real device flow as a demo user. */
  login(username: string): Promise<string>;
  /** `hoopctl connect <conn>` as that home's user (or as `env` says, e.g. ciEnv()), parsed. */
  connect(home: string, connection?: string, options?: { env?: Record<string, string> }): Promise<Tunnel>;
  /** CLI env of a CI job with client credentials. */
  ciEnv(): Record<string, string>;
  /**
   * kill -9 the gateway (or SIGTERM it, `graceful`) and start it again (with extra environment, if
   * given); `beforeStart` runs while it is down (e.g. to edit its files or its store).
   */
  restartGateway(options?: {
    env?: Record<string, string>;
    graceful?: boolean;
    beforeStart?: () => Promise<void>;
  }): Promise<void>;
  /** The running gateway process (to signal it, or wait for its exit). */
  gatewayProcess(): ChildProcess;
  /** Another gateway on the same configuration (use a PostgreSQL `store`), on its own port. */
  startReplica(replicaId: string, options?: { env?: Record<string, string> }): Promise<Replica>;
  stop(): Promise<void>;
}

function waitForLine(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern} in:\n${seen}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('utf8');
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        child[stream]!.off('data', onData);
        resolvePromise(match);
      }
    };
    child[stream]!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before ${pattern}:\n${seen}`));
    });
  });
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const tls = options.tls ?? true;
  const certs = tls || options.pgTls ? makeCerts() : undefined;
  const pg = await startPostgres({
    settings: options.pgSettings,
    authMethod: options.pgAuth,
    tls: options.pgTls ? { cert: certs!.cert, key: certs!.key } : undefined,
  });
  const dbPassword = `gw-${Math.random().toString(36).slice(2)}`;
  pg.psql(`\\set gw_password '${dbPassword}'\n${SEED_SQL}`);

  const dir = mkdtempSync(join(tmpdir(), 'hoop-stack-'));
  const port = await freePort();
  const gatewayUrl = `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}`;
  const idp = await startTestIdp({ audience: gatewayUrl, accessTokenTtl: options.accessTokenTtl });
  const configFile = join(dir, 'gateway.yaml');
  writeFileSync(join(dir, 'db-password'), dbPassword, { mode: 0o600 });
  writeFileSync(
    configFile,
    localGatewayConfig({
      port,
      tls: tls ? { cert: certs!.cert, key: certs!.key } : undefined,
      listenExtra: options.listenExtra,
      issuer: idp.issuer,
      audience: gatewayUrl,
      extraIssuers: options.extraIssuers?.(gatewayUrl),
      store: options.store,
      dbPort: pg.port,
      password: { env: 'TEST_DB_PASSWORD' },
      connectionTls: options.connectionTls?.replace('$CA', certs?.caCert ?? ''),
      policies: options.policies ?? DEFAULT_POLICIES,
      extra: options.extraConfig,
    }),
  );

  let gateway: ChildProcess | undefined;
  let log = '';
  const startGateway = async (extraEnv: Record<string, string> = {}) => {
    log = '';
    gateway = spawn(process.execPath, [GATEWAY, '--config', configFile], {
      env: {
        ...process.env,
        TEST_DB_PASSWORD: dbPassword,
        HOOP_LOG_LEVEL: 'info',
        ...(options.replicaId ? { HOOP_REPLICA_ID: options.replicaId } : {}),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
    });
    gateway.stderr!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
    });
    await waitForLine(gateway, 'stderr', /hoop-gateway listening/, 30_000);
  };
  await startGateway();

  const homes: string[] = [];
  const baseEnv = (home: string): Record<string, string> => ({
    ...(process.env as Record<string, string>),
    HOOPCTL_HOME: home,
    HOOPCTL_GATEWAY: gatewayUrl,
    HOOPCTL_TOKEN_STORE: 'file',
    ...(certs ? { HOOPCTL_CA_FILE: certs.caCert } : {}),
    NO_COLOR: '1',
  });

  const cli: Stack['cli'] = (home, args, opts = {}) =>
    new Promise((resolvePromise, reject) => {
      const child = spawn(process.execPath, [HOOPCTL, ...args], {
        env: { ...baseEnv(home), ...opts.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString('utf8');
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`hoopctl ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
      }, opts.timeoutMs ?? 60_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolvePromise({ code: code ?? -1, stdout, stderr });
      });
      child.stdin.end(opts.input ?? '');
    });

  const newHome = () => {
    const home = mkdtempSync(join(tmpdir(), 'hoopctl-home-'));
    homes.push(home);
    return home;
  };

  const children = new Set<ChildProcess>();
  const replicas = new Set<ChildProcess>();

  const startReplica: Stack['startReplica'] = async (replicaId, opts = {}) => {
    const replicaPort = await freePort();
    const replicaConfig = join(dir, `gateway-${replicaId}.yaml`);
    writeFileSync(
      replicaConfig,
      readFileSync(configFile, 'utf8').replace(
        `address: 127.0.0.1:${port}`,
        `address: 127.0.0.1:${replicaPort}`,
      ),
    );
    const child = spawn(process.execPath, [GATEWAY, '--config', replicaConfig], {
      env: {
        ...process.env,
        TEST_DB_PASSWORD: dbPassword,
        HOOP_LOG_LEVEL: 'info',
        HOOP_REPLICA_ID: replicaId,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    replicas.add(child);
    let output = '';
    child.stdout!.on('data', (c: Buffer) => {
      output += c.toString('utf8');
    });
    child.stderr!.on('data', (c: Buffer) => {
      output += c.toString('utf8');
    });
    await waitForLine(child, 'stderr', /hoop-gateway listening/, 30_000);
    return {
      id: replicaId,
      url: `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${replicaPort}`,
      log: () => output,
      async kill(signal = 'SIGKILL') {
        replicas.delete(child);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill(signal);
        await exited;
      },
    };
  };

  const stack: Stack = {
    pg,
    certs,
    gatewayUrl,
    configFile,
    dbPassword,
    gatewayLog: () => log,
    cli,
    async login(username) {
      const user = DEV_USERS.find((u) => u.username === username);
      if (!user) throw new Error(`no demo user ${username}`);
      const home = newHome();
      const child = spawn(process.execPath, [HOOPCTL, 'login', '--gateway', gatewayUrl, '--no-browser'], {
        env: baseEnv(home),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout!.on('data', (c: Buffer) => {
        output += c.toString('utf8');
      });
      child.stderr!.on('data', (c: Buffer) => {
        output += c.toString('utf8');
      });
      const match = await waitForLine(
        child,
        'stdout',
        /(https?:\/\/\S+)[\s\S]*?([A-Z0-9]{4}-[A-Z0-9]{4})/,
        30_000,
      );
      await completeDeviceLogin(match[1]!, match[2]!, user.username, user.password);
      const code = await new Promise<number>((r) => child.once('exit', (c) => r(c ?? -1)));
      if (code !== 0) throw new Error(`hoopctl login exited ${code}:\n${output}`);
      return home;
    },
    async connect(home, connection = 'prod-db', options = {}) {
      const child = spawn(process.execPath, [HOOPCTL, 'connect', connection], {
        env: { ...baseEnv(home), ...options.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      const match = await waitForLine(
        child,
        'stdout',
        /psql "(postgresql:\/\/hoop:([^@]+)@127\.0\.0\.1:(\d+)\/[^"]+)"/,
        30_000,
      );
      return {
        url: match[1]!,
        password: decodeURIComponent(match[2]!),
        port: Number(match[3]),
        stop: () => {
          child.kill('SIGTERM');
          children.delete(child);
        },
      };
    },
    gatewayProcess: () => gateway!,
    ciEnv: () => ({ HOOPCTL_CLIENT_ID: 'ci-bot', HOOPCTL_CLIENT_SECRET: 'ci-bot-secret' }),
    startReplica,
    async restartGateway(options = {}) {
      const old = gateway;
      const exited = old && old.exitCode === null ? new Promise((r) => old.once('exit', r)) : undefined;
      old?.kill(options.graceful ? 'SIGTERM' : 'SIGKILL');
      await exited;
      await options.beforeStart?.();
      await startGateway(options.env);
    },
    async stop() {
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(
        [...replicas].map((child) =>
          child.exitCode !== null || child.signalCode !== null
            ? undefined
            : new Promise((r) => {
                child.once('exit', r);
                child.kill('SIGTERM');
              }),
        ),
      );
      // A gateway that already exited (crashed, killed) sends no 'exit' again: do not wait for one.
      if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
        const exited = new Promise((r) => gateway!.once('exit', r));
        gateway.kill('SIGTERM');
        // SIGTERM drains (shutdown.grace); a session a test left open should not hold it: a second signal ends it.
        const hurry = setTimeout(() => gateway!.kill('SIGINT'), 2_000);
        await exited;
        clearTimeout(hurry);
      }
      await idp.stop();
      pg.stop();
      removeTemporary(dir, ...homes, ...(certs ? [certs.dir] : []));
    },
  };
  return stack;
}

/** Remove a test's temporary directories when it is done; HOOP_KEEP_TMP=1 keeps them to look at after a failure. */
export function removeTemporary(...paths: string[]): void {
  if (process.env.HOOP_KEEP_TMP) return;
  for (const path of paths) rmSync(path, { recursive: true, force: true });
}
