/** hoopctl login / logout / whoami: who am I at this gateway, and how the CLI gets its tokens. */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import * as oidc from 'openid-client';
import type { WhoAmI } from '../../shared/api.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget } from '../api.js';
import { c, info, printJson, progress, warn } from '../output.js';
import { resolveGateway, settings } from '../settings.js';
import {
  ciMode,
  clearTokens,
  gatewayDiscovery,
  getAccessToken,
  issuerConfiguration,
  oauthErrorReason,
  saveLogin,
  useIdTokenFile,
} from '../tokens.js';

interface LoginOptions {
  gateway?: string;
  browser: boolean;
  clientCredentials?: boolean;
  idTokenFile?: string;
}

export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description('Sign in to a gateway: device login in a browser, or check CI credentials')
    .option('--gateway <url>', 'gateway URL (remembered for later commands; default HOOPCTL_GATEWAY)')
    .option('--no-browser', 'only print the URL and code, do not open a browser')
    .option('--client-credentials', 'check the service account in HOOPCTL_CLIENT_ID / HOOPCTL_CLIENT_SECRET')
    .option(
      '--id-token-file <path>',
      'check a workload ID token (e.g. from the CI provider) read from this file',
    )
    .addHelpText(
      'after',
      `
Examples:
  hoopctl login --gateway https://gateway.example.com:8443
  hoopctl login --no-browser                       # on a remote machine: open the URL elsewhere
  HOOPCTL_CLIENT_ID=ci-bot HOOPCTL_CLIENT_SECRET=... hoopctl login --client-credentials
  hoopctl login --id-token-file "$RUNNER_TEMP/id-token"   # or HOOPCTL_ID_TOKEN=...

The device login keeps a refresh token in the OS keychain, or in a 0600 file under HOOPCTL_HOME
where there is none (HOOPCTL_TOKEN_STORE=file|keychain forces one). Client credentials and ID
tokens are never written anywhere: every command reads them from the environment.`,
    )
    .action(async (options: LoginOptions) => {
      const target = resolveGateway(options.gateway);
      if (options.idTokenFile) useIdTokenFile(options.idTokenFile);
      if (
        options.clientCredentials &&
        !(process.env.HOOPCTL_CLIENT_ID && process.env.HOOPCTL_CLIENT_SECRET)
      ) {
        throw new CliError(
          '--client-credentials needs HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET',
          ExitCode.usage,
        );
      }
      if (options.clientCredentials || ciMode() === 'id-token') {
        await checkCiCredentials(target);
      } else {
        await deviceLogin(target, options.browser);
      }
      if (options.gateway) settings().set('gateway', target.url);
    });

  program
    .command('logout')
    .description('Forget the tokens kept for a gateway (and revoke the refresh token at the IdP)')
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      '\nExamples:\n  hoopctl logout\n  hoopctl logout --gateway https://gateway.example.com:8443',
    )
    .action(async (options: { gateway?: string }) => {
      const target = resolveGateway(options.gateway);
      const forgotten = clearTokens(target);
      if (!forgotten) {
        info(`not logged in to ${target.url}`);
        return;
      }
      if (forgotten.refreshToken)
        await revokeQuietly(target, forgotten.issuer, forgotten.clientId, forgotten.refreshToken);
      info(`logged out of ${target.url}`);
    });

  program
    .command('whoami')
    .description('Who the gateway thinks you are: subject, groups, kind, the policies that apply')
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or the one login remembered)')
    .option('--json', 'print the WhoAmI object as JSON')
    .addHelpText('after', '\nExamples:\n  hoopctl whoami\n  hoopctl whoami --json | jq -r .identity.subject')
    .action(async (options: { gateway?: string; json?: boolean }) => {
      const target = resolveGateway(options.gateway);
      const me = await whoami(target);
      if (options.json) printJson(me);
      else printWhoAmI(target, me);
    });
}

async function whoami(target: GatewayTarget): Promise<WhoAmI> {
  return apiRequest<WhoAmI>(target, 'GET', '/v1/whoami', { token: await getAccessToken(target) });
}

/** RFC 8628: show a URL and a code, let the person sign in wherever they like, poll until done. */
async function deviceLogin(target: GatewayTarget, openBrowser: boolean): Promise<void> {
  const discovery = await gatewayDiscovery(target);
  const config = await issuerConfiguration(target, discovery.issuer, discovery.client_id, oidc.None());
  const scope = [...new Set([...discovery.scopes, 'openid', 'offline_access'])].join(' ');
  const resource = { resource: discovery.audience };

  let authorization: oidc.DeviceAuthorizationResponse;
  try {
    authorization = await oidc.initiateDeviceAuthorization(config, { scope, ...resource });
  } catch (err) {
    throw idpError(err, 'the identity provider refused to start a device login');
  }
  process.stdout.write(`Open this URL in a browser: ${c.bold(authorization.verification_uri)}\n`);
  process.stdout.write(`and enter the code:         ${c.bold(authorization.user_code)}\n`);
  if (openBrowser) tryOpenBrowser(authorization.verification_uri_complete ?? authorization.verification_uri);

  const waiting = progress('Waiting for you to sign in in the browser...');
  let tokens: oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.pollDeviceAuthorizationGrant(config, authorization, resource);
  } catch (err) {
    waiting.fail('Sign-in did not complete');
    throw idpError(err, 'sign-in failed');
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
  printWhoAmI(target, await whoami(target));
}

/** --client-credentials / --id-token-file / HOOPCTL_ID_TOKEN: prove the credentials work; store nothing. */
async function checkCiCredentials(target: GatewayTarget): Promise<void> {
  const me = await whoami(target);
  info(
    `credentials work (${ciMode() === 'id-token' ? 'workload ID token' : 'client credentials'}); nothing was stored`,
  );
  printWhoAmI(target, me);
}

function printWhoAmI(target: GatewayTarget, me: WhoAmI): void {
  const { identity } = me;
  const roles = [me.review && 'review', me.audit && 'audit', me.admin && 'admin'].filter(Boolean).join(', ');
  const rows: [string, string | undefined][] = [
    ['gateway', target.url],
    ['subject', identity.subject],
    ['name', identity.name],
    ['kind', identity.kind],
    ['groups', identity.groups.join(', ') || '(none)'],
    ['issuer', identity.issuer],
    ['client', identity.clientId],
    ['policies', me.policies.join(', ') || '(none)'],
    ['may', roles || undefined],
    ['expires', me.token_expires_at],
  ];
  for (const [name, value] of Object.entries(identity.claims ?? {})) rows.push([name, value]);
  for (const [label, value] of rows) {
    if (value) process.stdout.write(`${c.dim(label.padEnd(9))} ${value}\n`);
  }
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

async function revokeQuietly(
  target: GatewayTarget,
  issuer: string,
  clientId: string,
  token: string,
): Promise<void> {
  try {
    const config = await issuerConfiguration(target, issuer, clientId, oidc.None());
    await oidc.tokenRevocation(config, token, { token_type_hint: 'refresh_token' });
  } catch {
    // The local copy is gone either way; an IdP without revocation lets the token expire.
  }
}

function idpError(err: unknown, what: string): CliError {
  if (err instanceof CliError) return err;
  const code = err instanceof oidc.ResponseBodyError ? err.error : undefined;
  const why =
    code === 'access_denied'
      ? 'the sign-in was cancelled'
      : code === 'expired_token'
        ? 'the code expired before sign-in finished'
        : oauthErrorReason(err);
  if (why) return new CliError(`${what}: ${why} (run hoopctl login again)`, ExitCode.notAuthenticated);
  return new CliError(`${what}: ${(err as Error)?.message ?? String(err)}`);
}
