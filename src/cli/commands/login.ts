/**
 * hoopctl login / logout / whoami / token / status: who am I at this gateway (in this profile), and how
 * the CLI gets its tokens. The device flow itself lives in device-login.ts (loaded only by login).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { GatewayDiscovery, WhoAmI } from '../../shared/api.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget } from '../api.js';
import { c, info, JSON_OPTION_FLAGS, jsonOptionHelp, printJson, warn } from '../output.js';
import {
  caFileFor,
  configuredGateway,
  currentProfile,
  DEFAULT_PROFILE,
  describeTarget,
  GLOBAL_SETTINGS,
  gatewayFlag,
  gatewayToInherit,
  globalSetting,
  parseGatewayUrl,
  readSettings,
  resolveGateway,
  updateProfile,
} from '../settings.js';
import {
  announceSavedLogin,
  checkTokenStore,
  ciMode,
  clearTokens,
  gatewayDiscovery,
  getAccessToken,
  jwtClaims,
  loggedInGateway,
  saveLogin,
  tokenExpiry,
} from '../tokens.js';

interface LoginOptions {
  gateway?: string;
  browser: boolean;
  clientCredentials?: boolean;
  withToken?: boolean;
}

const GATEWAY_FLAG = '--gateway <url>';
const GATEWAY_HELP = 'gateway URL (default: HOOPCTL_GATEWAY or the profile’s, which login remembers)';

export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description(
      'Sign in to a gateway: device login in a browser, a token from stdin, or check CI credentials',
    )
    .option('--gateway <url>', 'gateway URL (remembered in the profile; default HOOPCTL_GATEWAY)')
    .option('--no-browser', 'only print the URL, the code and a QR code; do not open a browser')
    .option('--with-token', 'read an access or refresh token from stdin instead of signing in (as gh)')
    .option('--client-credentials', 'check the service account in HOOPCTL_CLIENT_ID / HOOPCTL_CLIENT_SECRET')
    .addHelpText(
      'after',
      `
The device login prints a URL with the code filled in (and a QR code on a terminal big enough
for one): open it on any device, sign in, and the command finishes by itself.

Examples:
  hoopctl login --gateway https://gateway.example.com:8443
  hoopctl login --no-browser                       # on a remote machine: open the URL elsewhere
  hoopctl --profile staging login --gateway https://staging.example.com:8443
  echo "$REFRESH_TOKEN" | hoopctl login --with-token
  HOOPCTL_CLIENT_ID=ci-bot HOOPCTL_CLIENT_SECRET=... hoopctl login --client-credentials
  hoopctl login --id-token-file "$RUNNER_TEMP/id-token"   # or HOOPCTL_ID_TOKEN=...

The device login keeps a refresh token in the OS keychain, or in a 0600 file under HOOPCTL_HOME
where there is none (HOOPCTL_TOKEN_STORE=file|keychain or --token-store forces one). Each profile
has its own login. Client credentials and ID tokens are never written anywhere: every command
reads them from the environment.`,
    )
    .action(async (options: LoginOptions) => {
      const { target, caFile } = loginTarget(options.gateway);
      const profile = target.profile ?? DEFAULT_PROFILE;
      rememberTokenStore(profile);
      if (options.clientCredentials && ciMode() !== 'client-credentials') {
        throw new CliError(
          '--client-credentials needs HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET (or --client-id and --client-secret)',
          ExitCode.usage,
        );
      }
      let me: WhoAmI;
      if (options.clientCredentials || ciMode()) {
        me = await checkCiCredentials(target);
      } else if (options.withToken) {
        me = await loginWithToken(target);
      } else {
        const { deviceLogin } = await import('./device-login.js');
        await deviceLogin(target, options.browser);
        me = await whoami(target);
        printWhoAmI(target, me);
      }
      if (!ciMode()) updateProfile(profile, { gateway: target.url, subject: me.identity.subject, caFile });
      if (gatewayFlag() && ciMode()) updateProfile(profile, { gateway: target.url, caFile });
      // Logged in with --profile to a profile that is not the one in use: say how to use it.
      if (profile !== DEFAULT_PROFILE && !process.env.HOOPCTL_PROFILE && readSettings().current !== profile) {
        info(
          c.dim(
            `profile ${profile}: use it with --profile ${profile}, or make it the default: hoopctl profile use ${profile}`,
          ),
        );
      }
    });

  program
    .command('logout')
    .description(
      'Forget the tokens kept for a gateway in this profile (and revoke the refresh token at the IdP)',
    )
    .option(GATEWAY_FLAG, GATEWAY_HELP)
    .addHelpText('after', '\nExamples:\n  hoopctl logout\n  hoopctl --profile staging logout')
    .action(async (options: { gateway?: string }) => {
      const target = resolveGateway(options.gateway);
      const forgotten = clearTokens(target);
      if (!forgotten) {
        info(`not logged in to ${describeTarget(target)}`);
        return;
      }
      if (forgotten.refreshToken) {
        const { revokeQuietly } = await import('./device-login.js');
        await revokeQuietly(target, forgotten.issuer, forgotten.clientId, forgotten.refreshToken);
      }
      info(`logged out of ${describeTarget(target)}`);
    });

  program
    .command('whoami')
    .description('Who the gateway thinks you are: subject, groups, kind, the policies that apply')
    .option(GATEWAY_FLAG, GATEWAY_HELP)
    .option(
      JSON_OPTION_FLAGS,
      jsonOptionHelp('{ identity, policies, review, audit, admin, token_expires_at }'),
    )
    .addHelpText('after', '\nExamples:\n  hoopctl whoami\n  hoopctl whoami --json identity.subject,policies')
    .action(async (options: { gateway?: string; json?: boolean | string }) => {
      const target = loggedInGateway(options.gateway);
      const me = await whoami(target);
      if (options.json) printJson(me, options.json);
      else printWhoAmI(target, me);
    });
}

/** `login --token-store KIND` (the global option, given to login) stays with the profile; the variable does not. */
function rememberTokenStore(profile: string): void {
  const given = globalSetting('tokenStore');
  if (given?.from === GLOBAL_SETTINGS.tokenStore.flag) {
    updateProfile(profile, { tokenStore: checkTokenStore(given.value, given.from) });
  }
}

/**
 * Where to log in, and the CA file the profile should remember: `--ca-file` (as an absolute path), or
 * the one that came with a gateway taken from another profile (gatewayToInherit).
 */
function loginTarget(flag?: string): { target: GatewayTarget; caFile?: string } {
  const given = globalSetting('caFile');
  const caFile = given?.from === GLOBAL_SETTINGS.caFile.flag ? resolve(given.value) : undefined;
  const target = configuredGateway(flag);
  if (target) return { target, caFile };
  const profile = currentProfile();
  const inherited = gatewayToInherit(profile);
  if (!inherited) return { target: resolveGateway(flag), caFile }; // says: no gateway, pass --gateway
  const url = parseGatewayUrl(inherited.settings.gateway!);
  info(
    `profile ${profile} has no gateway yet: using ${url}, profile ${inherited.from}'s (--gateway URL for another)`,
  );
  return {
    target: { url, caFile: caFileFor(inherited.settings), profile },
    caFile: caFile ?? inherited.settings.caFile,
  };
}

export async function whoami(target: GatewayTarget): Promise<WhoAmI> {
  return apiRequest<WhoAmI>(target, 'GET', '/v1/whoami', { token: await getAccessToken(target) });
}

/** --client-credentials / --id-token-file / HOOPCTL_ID_TOKEN: prove the credentials work; store nothing. */
async function checkCiCredentials(target: GatewayTarget): Promise<WhoAmI> {
  const me = await whoami(target);
  info(
    `credentials work (${ciMode() === 'id-token' ? 'workload ID token' : 'client credentials'}); nothing was stored`,
  );
  printWhoAmI(target, me);
  return me;
}

/**
 * `login --with-token`: a JWT on stdin is an access token (good until it expires); anything else is a
 * refresh token, renewed at once to prove it works. Either is checked with the gateway before it stays.
 */
async function loginWithToken(target: GatewayTarget): Promise<WhoAmI> {
  if (process.stdin.isTTY) {
    throw new CliError(
      '--with-token reads the token from stdin: pipe it in (echo "$TOKEN" | hoopctl login --with-token)',
      ExitCode.usage,
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const token = Buffer.concat(chunks).toString('utf8').trim();
  if (!token || /\s/.test(token)) throw new CliError('stdin did not hold one token', ExitCode.usage);
  const discovery: GatewayDiscovery = await gatewayDiscovery(target);
  const isAccessToken = jwtClaims(token) !== undefined;
  const base = { issuer: discovery.issuer, clientId: discovery.client_id, audience: discovery.audience };
  saveLogin(target, isAccessToken ? { ...base, accessToken: token } : { ...base, refreshToken: token }, true);
  let me: WhoAmI;
  try {
    me = await whoami(target);
  } catch (err) {
    clearTokens(target);
    throw err;
  }
  announceSavedLogin();
  if (isAccessToken) {
    const expiry = tokenExpiry(token);
    warn(
      `an access token alone lasts until it expires${expiry ? ` (${expiry.toISOString()})` : ''}; pipe a refresh token to stay logged in`,
    );
  }
  printWhoAmI(target, me);
  return me;
}

export function printWhoAmI(target: GatewayTarget, me: WhoAmI): void {
  const { identity } = me;
  const roles = [me.review && 'review', me.audit && 'audit', me.admin && 'admin'].filter(Boolean).join(', ');
  const rows: [string, string | undefined][] = [
    ['gateway', target.url],
    ['profile', target.profile ?? DEFAULT_PROFILE],
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
