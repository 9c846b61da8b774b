/**
 * `hoopctl login / whoami / logout` and the CLI's token source, in-process, against the real dev IdP
 * and a small stand-in gateway that serves discovery and whoami with the real token verifier.
 */
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Entry } from '@napi-rs/keyring';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuthError, createTokenVerifier } from '../../gateway/auth/verify.js';
import type { DevIdp } from '../../gateway/dev/idp.js';
import type { GatewayDiscovery, WhoAmI } from '../../src/shared/api.js';
import { issuerSchema } from '../../src/shared/config/schema.js';
import { CliError } from '../../src/shared/errors.js';
import {
  completeDeviceLogin,
  mintWorkloadToken,
  startTestIdp,
  startWorkloadIssuer,
  type WorkloadIssuer,
} from '../harness/idp.js';

const AUDIENCE = 'https://gateway.test';
const home = mkdtempSync(join(tmpdir(), 'hoopctl-home-'));
process.env.HOOPCTL_HOME = home;
process.env.HOOPCTL_TOKEN_STORE = 'file';
process.env.NO_COLOR = '1';

// Imported after HOOPCTL_HOME is set: settings() reads it once.
const { buildProgram } = await import('../../src/cli/main.js');
const { clearTokens, getAccessToken, saveLogin, tokenExpiry } = await import('../../src/cli/tokens.js');

let idp: DevIdp;
let ci: WorkloadIssuer;
let gateway: Server;
let gatewayUrl: string;

/** Run one hoopctl command in-process; returns stdout, or throws the CliError it ended with. */
async function hoopctl(...args: string[]): Promise<string> {
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    onStdout?.(out);
    return true;
  });
  try {
    // The real program (global options included), loading only the command's module.
    const argv = ['node', 'hoopctl', ...args];
    await (await buildProgram(argv)).parseAsync(argv);
    return out;
  } finally {
    write.mockRestore();
  }
}
let onStdout: ((soFar: string) => void) | undefined;

async function exitCodeOf(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  return { code: (err as CliError).exitCode, message: (err as CliError).message };
}

beforeAll(async () => {
  [idp, ci] = await Promise.all([startTestIdp({ audience: AUDIENCE }), startWorkloadIssuer()]);
  const verifier = createTokenVerifier([
    issuerSchema.parse({
      issuer: idp.issuer,
      audience: AUDIENCE,
      cli_client_id: 'hoopctl',
      claims: { groups: 'groups' },
    }),
    issuerSchema.parse({
      issuer: ci.issuer,
      audience: AUDIENCE,
      kind: 'workload',
      claims: { subject: 'repository' },
    }),
  ]);
  gateway = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/hoop-gateway') {
      const discovery: GatewayDiscovery = {
        issuer: idp.issuer,
        client_id: idp.cliClientId,
        audience: AUDIENCE,
        scopes: ['openid', 'email', 'profile', 'offline_access'],
        version: 'test',
      };
      return send(200, discovery);
    }
    if (req.url === '/v1/whoami') {
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      try {
        const identity = await verifier.verify(token);
        const me: WhoAmI = { identity, policies: [], review: false, audit: false, admin: false };
        return send(200, me);
      } catch (err) {
        const message = err instanceof AuthError ? err.message : String(err);
        return send(401, { error: { code: 'unauthenticated', message } });
      }
    }
    send(404, { error: { code: 'not_found', message: 'no such route' } });
  });
  await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
});

afterAll(async () => {
  gateway?.closeAllConnections();
  await Promise.all([idp?.stop(), ci?.stop(), new Promise((r) => gateway?.close(r))]);
});

afterEach(() => {
  onStdout = undefined;
  delete process.env.HOOPCTL_CLIENT_ID;
  delete process.env.HOOPCTL_CLIENT_SECRET;
  delete process.env.HOOPCTL_ID_TOKEN;
});

const tokenFile = () => join(home, 'tokens.json');

describe('device login', () => {
  it('prints the URL and the code, completes in the browser, keeps the refresh token in a 0600 file', async () => {
    let browser: Promise<string> | undefined;
    onStdout = (soFar) => {
      const url = /Open this URL in a browser: (\S+)/.exec(soFar)?.[1];
      const code = /enter the code:\s+([A-Z]{4}-[A-Z]{4})/.exec(soFar)?.[1];
      if (url && code && !browser) browser = completeDeviceLogin(url, code, 'alice@example.com', 'alice-dev');
    };
    const out = await hoopctl('login', '--gateway', gatewayUrl, '--no-browser');
    await browser;
    expect(out).toMatch(/subject\s+alice@example\.com/);
    expect(out).toMatch(/groups\s+engineering/);

    const stored = JSON.parse(readFileSync(tokenFile(), 'utf8'));
    expect(stored.gateways[gatewayUrl].refreshToken).toBeTruthy();
    expect(statSync(tokenFile()).mode & 0o777).toBe(0o600);
    // --gateway is remembered: whoami needs no flag.
    const me = JSON.parse(await hoopctl('whoami', '--json')) as WhoAmI;
    expect(me.identity).toMatchObject({ subject: 'alice@example.com', kind: 'human', clientId: 'hoopctl' });
  });

  it('refreshes the access token when it is about to expire', async () => {
    const file = JSON.parse(readFileSync(tokenFile(), 'utf8'));
    const old = file.gateways[gatewayUrl].accessToken as string;
    // Pretend the access token is gone (e.g. expired): only the refresh token is left.
    delete file.gateways[gatewayUrl].accessToken;
    writeFileSync(tokenFile(), JSON.stringify(file), { mode: 0o600 });
    const token = await getAccessToken({ url: gatewayUrl });
    expect(token).not.toBe(old);
    expect(tokenExpiry(token)!.getTime()).toBeGreaterThan(Date.now() + 60_000);
    expect(JSON.parse(readFileSync(tokenFile(), 'utf8')).gateways[gatewayUrl].accessToken).toBe(token);
  });

  it('logout forgets the tokens; then whoami says to log in, with exit code 3', async () => {
    await hoopctl('logout', '--gateway', gatewayUrl);
    expect(existsSync(tokenFile())).toBe(false);
    const { code, message } = await exitCodeOf(hoopctl('whoami', '--gateway', gatewayUrl));
    expect(code).toBe(3);
    // The message names the gateway and the profile it looked up, and the command that fixes it.
    expect(message).toBe(
      `not logged in to ${gatewayUrl} (profile default): run hoopctl login --gateway ${gatewayUrl}`,
    );
  });

  it('a login whose refresh token the IdP no longer honours ends with exit code 3 and the reason', async () => {
    writeFileSync(
      tokenFile(),
      JSON.stringify({
        version: 1,
        gateways: {
          [gatewayUrl]: {
            issuer: idp.issuer,
            clientId: 'hoopctl',
            audience: AUDIENCE,
            refreshToken: 'bogus',
          },
        },
      }),
      { mode: 0o600 },
    );
    const { code, message } = await exitCodeOf(getAccessToken({ url: gatewayUrl }));
    expect(code).toBe(3);
    expect(message).toMatch(/invalid_grant/);
    expect(existsSync(tokenFile())).toBe(false);
  });
});

describe('no usable keychain', () => {
  // Only where the OS keychain refuses (headless Linux, CI): elsewhere this would write to a real keychain.
  const keychainUsable = (() => {
    try {
      const probe = new Entry('hoopctl-test-probe', 'probe', { linux: { store: 'secret-service' } });
      probe.setPassword('x');
      probe.deletePassword();
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(keychainUsable)('falls back to the 0600 file with one warning line', async () => {
    delete process.env.HOOPCTL_TOKEN_STORE;
    let err = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += chunk.toString();
      return true;
    });
    try {
      const login = { issuer: idp.issuer, clientId: 'hoopctl', audience: AUDIENCE, refreshToken: 'r1' };
      expect(saveLogin({ url: gatewayUrl }, login)).toBe('file');
      expect(saveLogin({ url: gatewayUrl }, { ...login, refreshToken: 'r2' })).toBe('file');
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).toMatch(/no OS keychain.*tokens\.json \(mode 0600\)/);
      expect(statSync(tokenFile()).mode & 0o777).toBe(0o600);
      expect(clearTokens({ url: gatewayUrl })?.refreshToken).toBe('r2');
      expect(existsSync(tokenFile())).toBe(false);
    } finally {
      spy.mockRestore();
      process.env.HOOPCTL_TOKEN_STORE = 'file';
    }
  });
});

describe('CI mode stores nothing', () => {
  it('client credentials from the environment', async () => {
    process.env.HOOPCTL_CLIENT_ID = 'ci-bot';
    process.env.HOOPCTL_CLIENT_SECRET = 'ci-bot-secret';
    const out = await hoopctl('login', '--gateway', gatewayUrl, '--client-credentials');
    expect(out).toMatch(/subject\s+ci-bot/);
    expect(out).toMatch(/kind\s+service/);
    expect(existsSync(tokenFile())).toBe(false);
  });

  it('a wrong client secret is exit code 3 with the IdP reason', async () => {
    process.env.HOOPCTL_CLIENT_ID = 'ci-bot';
    process.env.HOOPCTL_CLIENT_SECRET = 'wrong';
    const { code, message } = await exitCodeOf(hoopctl('whoami', '--gateway', gatewayUrl));
    expect(code).toBe(3);
    expect(message).toMatch(/invalid_client/);
  });

  it('a workload ID token from HOOPCTL_ID_TOKEN is used as it is', async () => {
    process.env.HOOPCTL_ID_TOKEN = await mintWorkloadToken(ci, AUDIENCE);
    const me = JSON.parse(await hoopctl('whoami', '--json', '--gateway', gatewayUrl)) as WhoAmI;
    expect(me.identity).toMatchObject({ subject: 'acme/app', kind: 'workload' });
    expect(existsSync(tokenFile())).toBe(false);
  });

  it('token --json names the identity as the gateway maps it (as whoami), the raw claims only offline', async () => {
    process.env.HOOPCTL_ID_TOKEN = await mintWorkloadToken(ci, AUDIENCE);
    const online = JSON.parse(await hoopctl('token', '--json', '--gateway', gatewayUrl));
    expect(online).toMatchObject({
      identity: { subject: 'acme/app', kind: 'workload' },
      identity_from: 'gateway',
      mode: 'id-token',
    });
    const offline = JSON.parse(await hoopctl('token', '--json', '--gateway', 'http://127.0.0.1:1'));
    expect(offline.identity.subject).toBe('repo:acme/app:ref:refs/heads/main');
    expect(offline.identity_from).toBe('token');
  });

  it('an expired ID token is refused before it is sent', async () => {
    process.env.HOOPCTL_ID_TOKEN = await mintWorkloadToken(ci, AUDIENCE, {}, { expiresIn: -60 });
    const { code, message } = await exitCodeOf(hoopctl('whoami', '--gateway', gatewayUrl));
    expect(code).toBe(3);
    expect(message).toMatch(/expired/);
  });

  it('--id-token and --client-id/--client-secret, before or after the command, win over the environment', async () => {
    process.env.HOOPCTL_ID_TOKEN = 'not-a-token';
    const token = await mintWorkloadToken(ci, AUDIENCE);
    const workload = JSON.parse(
      await hoopctl('--id-token', token, 'whoami', '--json', '--gateway', gatewayUrl),
    ) as WhoAmI;
    expect(workload.identity).toMatchObject({ subject: 'acme/app', kind: 'workload' });
    delete process.env.HOOPCTL_ID_TOKEN;
    process.env.HOOPCTL_CLIENT_ID = 'someone-else';
    process.env.HOOPCTL_CLIENT_SECRET = 'wrong';
    const flags = ['--client-id', 'ci-bot', '--client-secret', 'ci-bot-secret'];
    const service = await hoopctl('whoami', '--gateway', gatewayUrl, ...flags);
    expect(service).toMatch(/subject\s+ci-bot/);
    const half = await exitCodeOf(hoopctl('whoami', '--gateway', gatewayUrl, '--client-id', 'ci-bot'));
    expect(half.code).toBe(3); // the variable's wrong secret, with the flag's id: the IdP refuses
    expect(half.message).toMatch(/check --client-id and HOOPCTL_CLIENT_SECRET/);
    expect(existsSync(tokenFile())).toBe(false);
  });

  it('--id-token-file', async () => {
    const file = join(home, 'id-token');
    writeFileSync(file, await mintWorkloadToken(ci, AUDIENCE));
    const out = await hoopctl('login', '--gateway', gatewayUrl, '--id-token-file', file);
    expect(out).toMatch(/kind\s+workload/);
    expect(existsSync(tokenFile())).toBe(false);
  });
});
