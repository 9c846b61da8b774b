/**
 * hoopctl installed on its own: `npm pack` gives a tarball that installs globally (into a temporary
 * prefix) with both binaries working and nothing from the repository needed. The installed
 * `hoop-gateway --dev` runs the demo stack from a directory outside the clone, and the installed
 * `hoopctl login --no-browser` signs in against it, finished through the dev IdP's headless path.
 * Needs the npm registry (or npm's cache) for the tarball's dependencies, as any install does.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePortPair } from '../../gateway/dev/ports.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
let prefix: string;
let gateway: ChildProcess | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hoopctl-pack-'));
  // --dev runs PostgreSQL as the postgres user when started as root: it must traverse this directory.
  chmodSync(dir, 0o711);
  prefix = join(dir, 'prefix');
  // npm test has just built dist/: pack what is there (prepack would build it again).
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  execFileSync(
    'npm',
    [
      'install',
      '--global',
      '--prefix',
      prefix,
      join(dir, tarball),
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
    ],
    { cwd: dir, stdio: 'pipe', timeout: 240_000 },
  );
}, 300_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null) {
    const exited = new Promise((r) => gateway!.once('exit', r));
    gateway.kill('SIGTERM');
    await exited;
  }
});

/** Run an installed binary from a directory outside the clone, with a clean environment. */
function installed(bin: string, args: string[], env: Record<string, string> = {}) {
  return spawn(join(prefix, 'bin', bin), args, {
    cwd: dir,
    env: { PATH: `${join(prefix, 'bin')}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: dir, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function outputOf(child: ChildProcess): Promise<{ code: number | null; out: string }> {
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  return new Promise((r) => child.once('exit', (code) => r({ code, out })));
}

describe('the packed tarball, installed globally', () => {
  it('has both binaries, and only what the package lists', async () => {
    const tree = join(prefix, 'lib', 'node_modules', 'hoopctl');
    expect(existsSync(join(tree, 'dist', 'src', 'cli', 'main.js'))).toBe(true);
    expect(existsSync(join(tree, 'test'))).toBe(false);
    expect(existsSync(join(tree, 'src'))).toBe(false);
    const version = await outputOf(installed('hoopctl', ['--version']));
    expect(version.out.trim()).toBe(`hoopctl ${VERSION}`);
    const gatewayVersion = await outputOf(installed('hoop-gateway', ['--version']));
    expect(gatewayVersion.out.trim()).toBe(VERSION);
  });

  // Starts a whole demo stack (PostgreSQL, IdP, gateway) and a device login: room for a busy machine.
  it('runs hoop-gateway --dev, and hoopctl login --no-browser against it', { timeout: 180_000 }, async () => {
    const port = await freePortPair(20_000 + Math.floor(Math.random() * 20_000));
    gateway = installed('hoop-gateway', ['--dev', '--port', String(port), '--dir', join(dir, 'dev')]);
    let log = '';
    await new Promise<void>((resolveStart, reject) => {
      const seen = (c: Buffer) => {
        log += c.toString('utf8');
        if (log.includes('hoop-gateway listening')) resolveStart();
      };
      gateway!.stdout!.on('data', seen);
      gateway!.stderr!.on('data', seen);
      gateway!.once('exit', (code) => reject(new Error(`hoop-gateway --dev exited ${code}: ${log}`)));
    });
    const gatewayUrl = `http://127.0.0.1:${port}`;
    const home = join(dir, 'home');
    const login = installed('hoopctl', ['login', '--no-browser', '--gateway', gatewayUrl], {
      HOOPCTL_HOME: home,
    });
    let printed = '';
    let finished: Promise<Response> | undefined;
    login.stdout!.on('data', (c: Buffer) => {
      printed += c.toString('utf8');
      const code = /enter the code:\s+([A-Z]{4}-[A-Z]{4})/.exec(printed)?.[1];
      if (code && !finished) {
        // The headless path the dev stack documents (what `curl -d ...` in its welcome text does).
        finished = fetch(`http://127.0.0.1:${port + 1}/dev/device-login`, {
          method: 'POST',
          body: new URLSearchParams({
            user_code: code,
            username: 'alice@example.com',
            password: 'alice-dev',
          }),
        });
      }
    });
    const result = await outputOf(login);
    expect((await finished)?.status).toBe(200);
    expect(result.code, printed + result.out).toBe(0);
    expect(printed).toMatch(/with the code filled in: http:\/\/127\.0\.0\.1:\d+\/device\?user_code=/);
    expect(printed).toMatch(/subject\s+alice@example\.com/);
    const exec = await outputOf(
      installed('hoopctl', ['exec', 'prod-db', '--json', '-c', 'select count(*)::int as n from customers'], {
        HOOPCTL_HOME: home,
      }),
    );
    expect(exec.code, exec.out).toBe(0);
    expect(exec.out).toContain('{"n":5}');
  });
});
