/**
 * The dev IdP behind `hoop-gateway --dev`: logins survive its restart (sessions, grants and refresh
 * tokens persist in the dev directory), and its headless path (POST /dev/device-login) finishes a device
 * login without a browser — with the right password only.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { describe, expect, it } from 'vitest';
import { type DevIdp, HEADLESS_PATH } from '../../gateway/dev/idp.js';
import { deviceFlowTokens, startTestIdp } from '../harness/idp.js';
import { freePort } from '../harness/ports.js';

const AUDIENCE = 'https://gateway.test';

/**
 * This process's fetch keeps connections alive: one to the IdP before its restart is dead after it. A
 * CLI is a new process each time and never sees that; here the first request may fail once, so retry.
 */
async function afterRestart<T>(attempt: () => Promise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!/fetch failed/.test(String((err as Error).message))) throw err;
    return attempt();
  }
}

function configFor(idp: DevIdp): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(idp.issuer), idp.cliClientId, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

describe('dev IdP', () => {
  it('keeps refresh tokens across a restart with the same data directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hoop-idp-'));
    const port = await freePort();
    let idp = await startTestIdp({ audience: AUDIENCE, port, dataDir });
    const tokens = await deviceFlowTokens(idp, AUDIENCE, 'alice@example.com', 'alice-dev');
    await idp.stop();
    expect(statSync(join(dataDir, 'idp-state.json')).mode & 0o777).toBe(0o600);

    idp = await startTestIdp({ audience: AUDIENCE, port, dataDir });
    try {
      const config = await afterRestart(() => configFor(idp));
      const renewed = await afterRestart(() =>
        oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: AUDIENCE }),
      );
      expect(renewed.access_token).toBeTruthy();
    } finally {
      await idp.stop();
    }

    // Without the data directory the state is in memory only: the same token is unknown after a restart.
    const port2 = await freePort();
    let memoryOnly = await startTestIdp({ audience: AUDIENCE, port: port2 });
    const lost = await deviceFlowTokens(memoryOnly, AUDIENCE, 'alice@example.com', 'alice-dev');
    await memoryOnly.stop();
    memoryOnly = await startTestIdp({ audience: AUDIENCE, port: port2 });
    try {
      const config = await afterRestart(() => configFor(memoryOnly));
      await expect(
        afterRestart(() => oidc.refreshTokenGrant(config, lost.refresh_token!, { resource: AUDIENCE })),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      await memoryOnly.stop();
    }
  });

  it('finishes a device login from a form post (headless), with the right password only', async () => {
    const idp = await startTestIdp({ audience: AUDIENCE });
    try {
      const config = await configFor(idp);
      const start = () =>
        oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access', resource: AUDIENCE });
      const post = (form: Record<string, string>) =>
        fetch(`${idp.issuer}${HEADLESS_PATH}`, { method: 'POST', body: new URLSearchParams(form) });

      const refused = await start();
      const wrong = await post({
        user_code: refused.user_code,
        username: 'alice@example.com',
        password: 'nope',
      });
      expect(wrong.status).toBe(400);
      expect(((await wrong.json()) as { error: string }).error).toMatch(/login refused/);

      const authorization = await start();
      const [answer, tokens] = await Promise.all([
        post({ user_code: authorization.user_code, username: 'alice@example.com', password: 'alice-dev' }),
        oidc.pollDeviceAuthorizationGrant(config, authorization, { resource: AUDIENCE }),
      ]);
      expect(answer.status).toBe(200);
      expect(tokens.claims()?.sub).toBe('alice@example.com');
      expect((await fetch(`${idp.issuer}${HEADLESS_PATH}`)).status).toBe(405);
    } finally {
      await idp.stop();
    }
  });
});
