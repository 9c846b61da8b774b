/**
 * The device authorization grant (RFC 8628) as `hoopctl login` runs it: print the verification URL with
 * the code filled in (`verification_uri_complete`), the bare URL and code (SPEC: one line each), a QR
 * code when stdout is a terminal big enough for one, then poll until the person signed in — or the code
 * expired, or the wait was interrupted (interrupt.ts ends it with 130/143).
 * Loaded only by `login` and `logout`: nothing else pays for openid-client.
 */
import { spawn } from 'node:child_process';
import type * as Oidc from 'openid-client';
import { CliError, ExitCode } from '../../shared/errors.js';
import type { GatewayTarget } from '../api.js';
import { c, progress, warn } from '../output.js';
import {
  gatewayDiscovery,
  issuerConfiguration,
  loginCommand,
  oauthErrorReason,
  saveLogin,
} from '../tokens.js';

export async function deviceLogin(target: GatewayTarget, openBrowser: boolean): Promise<void> {
  const oidc = await import('openid-client');
  const discovery = await gatewayDiscovery(target);
  const config = await issuerConfiguration(target, discovery.issuer, discovery.client_id, oidc.None());
  const scope = [...new Set([...discovery.scopes, 'openid', 'offline_access'])].join(' ');
  const resource = { resource: discovery.audience };

  let authorization: Oidc.DeviceAuthorizationResponse;
  try {
    authorization = await oidc.initiateDeviceAuthorization(config, { scope, ...resource });
  } catch (err) {
    throw await idpError(target, err, 'the identity provider refused to start a device login');
  }
  const complete = authorization.verification_uri_complete;
  process.stdout.write(`Open this URL in a browser: ${c.bold(authorization.verification_uri)}\n`);
  process.stdout.write(`and enter the code:         ${c.bold(authorization.user_code)}\n`);
  if (complete) {
    process.stdout.write(`or open this URL, with the code filled in: ${c.bold(complete)}\n`);
    await printQrCode(complete);
  }
  if (openBrowser) tryOpenBrowser(complete ?? authorization.verification_uri);

  const waiting = progress(
    `Waiting for you to sign in (the code expires in ${Math.round(authorization.expires_in / 60)} min)...`,
  );
  let tokens: Oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.pollDeviceAuthorizationGrant(config, authorization, resource);
  } catch (err) {
    waiting.fail('Sign-in did not complete');
    throw await idpError(target, err, 'sign-in failed');
  }
  waiting.succeed('Signed in');

  if (!tokens.refresh_token) {
    warn(
      'the identity provider issued no refresh token: you will have to log in again when the access token expires',
    );
  }
  saveLogin(target, {
    issuer: discovery.issuer,
    clientId: discovery.client_id,
    audience: discovery.audience,
    refreshToken: tokens.refresh_token,
    accessToken: tokens.access_token,
  });
}

/** A QR code of the URL, on a terminal that can show all of it (else nothing: the URL is printed above). */
async function printQrCode(url: string): Promise<void> {
  const out = process.stdout;
  if (!out.isTTY) return;
  const { renderUnicodeCompact } = await import('uqr');
  const qr = renderUnicodeCompact(url, { border: 2 });
  const lines = qr.split('\n');
  const width = Math.max(...lines.map((l) => l.length));
  if ((out.columns ?? 0) < width || (out.rows ?? 0) < lines.length + 6) return;
  out.write(`\n${qr}\n\n`);
}

/** Best effort: a browser on this machine, when it has a display. Never fails the login. */
function tryOpenBrowser(url: string): void {
  const opener =
    process.platform === 'darwin'
      ? ['open', url]
      : process.platform === 'win32'
        ? ['cmd', '/c', 'start', '""', url]
        : process.env.DISPLAY || process.env.WAYLAND_DISPLAY
          ? ['xdg-open', url]
          : undefined;
  if (!opener) return;
  try {
    const child = spawn(opener[0]!, opener.slice(1), { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No opener installed: the URL is printed above.
  }
}

export async function revokeQuietly(
  target: GatewayTarget,
  issuer: string,
  clientId: string,
  token: string,
): Promise<void> {
  try {
    const oidc = await import('openid-client');
    const config = await issuerConfiguration(target, issuer, clientId, oidc.None());
    await oidc.tokenRevocation(config, token, { token_type_hint: 'refresh_token' });
  } catch {
    // The local copy is gone either way; an IdP without revocation lets the token expire.
  }
}

async function idpError(target: GatewayTarget, err: unknown, what: string): Promise<CliError> {
  if (err instanceof CliError) return err;
  const oidc = await import('openid-client');
  const code = err instanceof oidc.ResponseBodyError ? err.error : undefined;
  const why =
    code === 'access_denied'
      ? 'the sign-in was cancelled'
      : code === 'expired_token'
        ? 'the code expired before sign-in finished'
        : await oauthErrorReason(err);
  if (why) {
    return new CliError(`${what}: ${why} (run ${loginCommand(target)} again)`, ExitCode.notAuthenticated);
  }
  return new CliError(`${what}: ${(err as Error)?.message ?? String(err)}`);
}
