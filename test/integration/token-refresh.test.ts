/**
 * `hoopctl connect` keeps working past the access token's lifetime: each new client connection
 * gets a token refreshed with the stored refresh token (the gateway refuses expired ones).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

describe('access token refresh', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  let home: string;
  const accessToken = () =>
    Object.values(
      JSON.parse(readFileSync(join(home, 'tokens.json'), 'utf8')).gateways as Record<
        string,
        { accessToken: string }
      >,
    )[0]!.accessToken;
  beforeAll(async () => {
    // 35 s lifetime: the CLI refreshes tokens within 30 s of expiry, so one refresh is due after ~5 s.
    stack = await startStack({ accessTokenTtl: 35 });
    home = await stack.login('alice@example.com');
    tunnel = await stack.connect(home);
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('a connection opened after the first token is due for refresh still gets in', async () => {
    // Asynchronous: the IdP runs in this test process and must answer the CLI's refresh meanwhile.
    const psql = () =>
      new Promise<{ stdout: string; stderr: string }>((resolve) => {
        execFile(
          'psql',
          ['-X', '-At', tunnel.url, '-c', 'select current_user'],
          { timeout: 30_000 },
          (_err, stdout, stderr) => resolve({ stdout, stderr }),
        );
      });
    const once = await psql();
    expect(once.stderr + once.stdout).toBe('hoop_gateway\n');
    const first = accessToken();
    await new Promise((r) => setTimeout(r, 7_000));
    const later = await psql();
    expect(later.stderr).toBe('');
    expect(later.stdout.trim()).toBe('hoop_gateway');
    // The refresh really happened: the stored access token is a new one.
    expect(accessToken()).not.toBe(first);
  });
});
