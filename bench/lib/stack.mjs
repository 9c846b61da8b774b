// A benchmark stack from the built programs, runnable with plain `node` (no vitest, no TypeScript):
// a throwaway PostgreSQL seeded like the demo (dist/gateway/dev/postgres.js), the dev OIDC provider
// (dist/gateway/dev/idp.js), `bin/hoop-gateway` with a generated config, and `bin/hoopctl connect`
// as the ci-bot service identity (client credentials). Run `npm run build` first.
//
//   const stack = await startBenchStack({ pgSettings: { max_connections: '300' } });
//   const gw = await stack.startGateway({ policies: 'policies: [...]' });
//   const tunnel = await stack.connect(gw);   // { url, port, stop() }
//   ... pgbench against tunnel.url or stack.directUrl ...
//   tunnel.stop(); await gw.stop(); await stack.stop();

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localGatewayConfig } from '../../dist/gateway/dev/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DIST = join(ROOT, 'dist', 'gateway', 'dev');
export const HOOPCTL = join(ROOT, 'bin', 'hoopctl');
export const GATEWAY = join(ROOT, 'bin', 'hoop-gateway');

const { startPostgres } = await import(join(DIST, 'postgres.js'));
const { startDevIdp } = await import(join(DIST, 'idp.js'));
const { freePort } = await import(join(DIST, 'ports.js'));
const { SEED_SQL } = await import(join(DIST, 'dev.js'));

/** Resolves with the first match of `pattern` in a child's stream; rejects if it exits first. */
function waitFor(child, stream, pattern, timeoutMs = 30_000) {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}:\n${seen}`)),
      timeoutMs,
    );
    const onData = (chunk) => {
      seen += chunk.toString('utf8');
      const match = pattern.exec(seen);
      if (match) {
        clearTimeout(timer);
        child[stream].off('data', onData);
        resolvePromise(match);
      }
    };
    child[stream].on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`process exited (${code}) before ${pattern}:\n${seen}`));
    });
  });
}

export async function startBenchStack(options = {}) {
  const pg = await startPostgres({ settings: { max_connections: '300', ...options.pgSettings } });
  const dbPassword = `gw-${Math.random().toString(36).slice(2)}`;
  pg.psql(`\\set gw_password '${dbPassword}'\n${SEED_SQL}`);
  const dir = mkdtempSync(join(tmpdir(), 'hoop-bench-'));
  const port = await freePort();
  const gatewayUrl = `http://127.0.0.1:${port}`;
  const idp = await startDevIdp({ port: await freePort(), audience: gatewayUrl, accessTokenTtl: 3600 });
  const children = new Set();
  const ciEnv = {
    ...process.env,
    HOOPCTL_HOME: join(dir, 'home'),
    HOOPCTL_GATEWAY: gatewayUrl,
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CLIENT_ID: 'ci-bot',
    HOOPCTL_CLIENT_SECRET: 'ci-bot-secret',
    NO_COLOR: '1',
  };
  let configs = 0;

  return {
    pg,
    dir,
    gatewayUrl,
    /** The database as the gateway's own role, without the gateway. */
    directUrl: pg.url('shop', 'hoop_gateway', dbPassword),
    /** Run SQL as the superuser in database `shop`. */
    psql: (sql) => pg.psql(sql, 'shop'),
    /** Start hoop-gateway on the stack's port with `policies` (YAML text starting with `policies:`). */
    async startGateway({ policies, extraConfig = '' }) {
      const configFile = join(dir, `gateway-${++configs}.yaml`);
      writeFileSync(
        configFile,
        localGatewayConfig({
          port,
          issuer: idp.issuer,
          audience: gatewayUrl,
          store: `  path: ./hoop-data-${configs}`,
          dbPort: pg.port,
          password: { env: 'BENCH_DB_PASSWORD' },
          policies,
          extra: extraConfig,
        }),
      );
      const child = spawn(process.execPath, [GATEWAY, '--config', configFile], {
        cwd: dir,
        env: { ...process.env, BENCH_DB_PASSWORD: dbPassword, HOOP_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      child.stdout.resume();
      await waitFor(child, 'stderr', /hoop-gateway listening/);
      child.stderr.resume();
      return {
        configFile,
        async stop() {
          children.delete(child);
          if (child.exitCode !== null) return;
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        },
      };
    },
    /** `hoopctl connect prod-db` as ci-bot; resolves with the printed URL. */
    async connect() {
      const child = spawn(process.execPath, [HOOPCTL, 'connect', 'prod-db'], {
        env: ciEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      const match = await waitFor(
        child,
        'stdout',
        /psql "(postgresql:\/\/hoop:([^@]+)@127\.0\.0\.1:(\d+)\/[^"]+)"/,
      );
      child.stdout.resume();
      child.stderr.resume();
      return {
        url: match[1],
        port: Number(match[3]),
        stop() {
          children.delete(child);
          child.kill('SIGTERM');
        },
      };
    },
    /** Run a CLI command as ci-bot. */
    cli(args) {
      return spawnSync(process.execPath, [HOOPCTL, ...args], { env: ciEnv, encoding: 'utf8' });
    },
    async stop() {
      for (const child of children) child.kill('SIGTERM');
      await idp.stop().catch(() => {});
      pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** pgbench (from the cluster's bindir, else PATH) with `args`; returns { tps, output }. */
export function pgbench(bindir, args, env = {}) {
  const bin = bindir ? join(bindir, 'pgbench') : 'pgbench';
  const result = spawnSync(bin, args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 600_000,
  });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0) throw new Error(`pgbench ${args.join(' ')} failed (${result.status}):\n${output}`);
  const match = /tps = ([\d.]+) \((?:without|excluding)/.exec(output);
  return { tps: match ? Number(match[1]) : Number.NaN, output };
}
