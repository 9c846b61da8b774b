/**
 * hoop-gateway as a process, before it serves anything: `--check` and start give the same verdict on a
 * configuration (exit 2 and the same list of every problem), and a listener that cannot bind at start
 * ends the process (exit 1, one line naming the key) instead of leaving it running half-started.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortFree } from '../../gateway/dev/ports.js';
import { freePort } from '../harness/ports.js';
import { GATEWAY, removeTemporary } from '../harness/stack.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from the first "cannot listen" line on stderr to the exit (undefined without one). */
  exitAfterBindError?: number;
}

/** Run hoop-gateway to its end (SIGKILL after timeoutMs: a gateway still running then has code null). */
function run(args: string[], timeoutMs = 30_000): Promise<Run> {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('HOOP_TEST_')) delete env[name];
  const child = spawn(GATEWAY, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let bindErrorAt: number | undefined;
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
    if (bindErrorAt === undefined && stderr.includes('cannot listen on')) bindErrorAt = Date.now();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      const exitAfterBindError = bindErrorAt === undefined ? undefined : Date.now() - bindErrorAt;
      resolve({ code, stdout, stderr, exitAfterBindError });
    });
  });
}

/** The lines that are not the JSON log: what an operator reads. */
const plain = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => line && !line.startsWith('{'))
    .join('\n');

describe('hoop-gateway --check and start', () => {
  let dir: string;
  let n = 0;
  const configFile = (yaml: string) => {
    const file = join(dir, `gw-${++n}.yaml`);
    writeFileSync(file, yaml);
    return file;
  };
  const head = (port: number, extra = '') =>
    `listen: { address: "127.0.0.1:${port}", insecure_loopback: true${extra} }\n` +
    'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-gw-start-'));
    writeFileSync(join(dir, 'garbage.pem'), 'not a key\n');
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'private.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  });
  afterAll(() => removeTemporary(dir));

  const cases: [string, string, RegExp[]][] = [
    [
      'an audit.trusted_keys file that is missing, or a private key',
      `${head(18443)}audit:\n  trusted_keys: [/missing.pem, private.pem]\n`,
      [
        /audit\.trusted_keys\[0\] \(line 4\): cannot read \/missing\.pem \(ENOENT\)/,
        /trusted_keys\[1\].*private key/,
      ],
    ],
    [
      'diagnostics.listen on the API listener address',
      `${head(18443)}diagnostics: { listen: "127.0.0.1:18443" }\n`,
      [/diagnostics\.listen \(line 3\): 127\.0\.0\.1:18443 is also listen\.address/],
    ],
    [
      'listen.postgres on the API listener address',
      head(18443, ', postgres: "127.0.0.1:18443"'),
      [/listen\.postgres \(line 1\): 127\.0\.0\.1:18443 is also listen\.address/],
    ],
    [
      'TLS files of each listener that are not a certificate, or missing',
      'listen: { address: "127.0.0.1:18443", tls: { cert: garbage.pem, key: private.pem } }\n' +
        'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n' +
        'diagnostics: { listen: "127.0.0.1:19090", tls: { cert: missing.crt, key: missing.key } }\n',
      [
        /listen\.tls\.cert \(line 1\): \S+garbage\.pem is not a PEM certificate/,
        /diagnostics\.tls\.cert \(line 3\): cannot read \S+missing\.crt \(ENOENT\)/,
        /diagnostics\.tls\.key \(line 3\): cannot read \S+missing\.key \(ENOENT\)/,
      ],
    ],
    [
      'a signing key that is not one, a missing password file and unset secrets: all at once',
      `${head(18443)}connections:\n` +
        '  - { name: a, host: h, database: d, user: u, password_env: HOOP_TEST_PW }\n' +
        '  - { name: b, host: h, database: d, user: u, password_file: missing-pw }\n' +
        'notify: { webhooks: [{ url: "https://hooks.example", secret_env: HOOP_TEST_HOOK }] }\n' +
        'audit: { signing_key_file: garbage.pem }\n',
      [
        /connections\[0\]\.password_env \(line 4\): environment variable HOOP_TEST_PW is not set/,
        /connections\[1\]\.password_file \(line 5\): cannot read \S+missing-pw \(ENOENT\)/,
        /notify\.webhooks\[0\]\.secret_env \(line 6\): environment variable HOOP_TEST_HOOK is not set/,
        /audit\.signing_key_file \(line 7\): .*garbage\.pem is not a PEM private key/,
      ],
    ],
  ];

  it.each(cases)('%s: both exit 2 with the same list', async (_what, yaml, expected) => {
    const file = configFile(yaml);
    const [check, start] = await Promise.all([run(['--config', file, '--check']), run(['--config', file])]);
    expect(check.code).toBe(2);
    expect(start.code).toBe(2);
    expect(check.stdout).toBe('');
    expect(start.stderr).toBe(check.stderr);
    const problems = check.stderr.split('\n').filter((line) => line.startsWith('  - '));
    expect(check.stderr.split('\n')[0]).toBe(`hoop-gateway: ${file}: invalid configuration`);
    expect(problems).toEqual(expected.map((pattern) => expect.stringMatching(pattern)));
  });
});

describe('hoop-gateway start: a listener that cannot bind', () => {
  let dir: string;
  let busy: Server;
  let ports: { api: number; postgres: number; diagnostics: number; idp: number };

  const config = () =>
    `listen: { address: "127.0.0.1:${ports.api}", insecure_loopback: true, postgres: "127.0.0.1:${ports.postgres}" }\n` +
    // Nothing listens at the issuer: start-up only warns and keeps retrying in the background.
    `identity: { issuers: [{ issuer: "http://127.0.0.1:${ports.idp}/", audience: a }] }\n` +
    `diagnostics: { listen: "127.0.0.1:${ports.diagnostics}" }\n`;

  const occupy = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve(server));
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-gw-bind-'));
    ports = {
      api: await freePort(),
      postgres: await freePort(),
      diagnostics: await freePort(),
      idp: await freePort(),
    };
    writeFileSync(join(dir, 'gw.yaml'), config());
  });
  afterAll(() => {
    busy?.close();
    removeTemporary(dir);
  });

  async function startWithBusy(port: number) {
    busy = await occupy(port);
    try {
      const file = join(dir, 'gw.yaml');
      const check = await run(['--config', file, '--check']);
      expect(check.code).toBe(0); // a port in use is not the configuration's fault
      return await run(['--config', file]);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  }

  it('diagnostics.listen in use: exit 1 promptly with that one line, every other listener closed', async () => {
    const start = await startWithBusy(ports.diagnostics);
    expect(start.code).toBe(1);
    expect(plain(start.stderr)).toBe(
      `hoop-gateway: diagnostics.listen: cannot listen on 127.0.0.1:${ports.diagnostics}: EADDRINUSE`,
    );
    expect(start.stderr).not.toContain('hoop-gateway listening');
    expect(start.exitAfterBindError).toBeLessThan(3000);
    expect(await isPortFree(ports.api)).toBe(true);
    expect(await isPortFree(ports.postgres)).toBe(true);
  });

  it('listen.address in use, after the native listener opened: exit 1 promptly, the native port freed', async () => {
    const start = await startWithBusy(ports.api);
    expect(start.code).toBe(1);
    expect(plain(start.stderr)).toBe(
      `hoop-gateway: listen.address: cannot listen on 127.0.0.1:${ports.api}: EADDRINUSE`,
    );
    expect(start.exitAfterBindError).toBeLessThan(3000);
    expect(await isPortFree(ports.postgres)).toBe(true);
  });
});
