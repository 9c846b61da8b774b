/**
 * hoopctl login / logout / whoami / token / status: who am I at this gateway (in this profile), and how
 * the CLI gets its tokens. The device flow itself lives in device-login.ts (loaded only by login).
 */
import { type Command, Option } from 'commander';
import type { AccessRequestListResponse, GatewayDiscovery, WhoAmI } from '../../shared/api.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget } from '../api.js';
import { c, info, JSON_OPTION_FLAGS, jsonOptionHelp, printJson, warn } from '../output.js';
import { DEFAULT_PROFILE, describeTarget, readSettings, resolveGateway, updateProfile } from '../settings.js';
import {
  ciMode,
  clearTokens,
  gatewayDiscovery,
  getAccessToken,
  jwtClaims,
  loginCommand,
  saveLogin,
  storedLogin,
  tokenExpiry,
  tokenFilePath,
  tokenMode,
  useIdTokenFile,
} from '../tokens.js';

interface LoginOptions {
  gateway?: string;
  browser: boolean;
  clientCredentials?: boolean;
  idTokenFile?: string;
  withToken?: boolean;
  tokenStore?: 'keychain' | 'file';
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
    .option(
      '--id-token-file <path>',
      'check a workload ID token (e.g. from the CI provider) read from this file',
    )
    .addOption(
      new Option(
        '--token-store <kind>',
        'keep this profile’s tokens in the OS keychain or a 0600 file',
      ).choices(['keychain', 'file']),
    )
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
      const target = resolveGateway(options.gateway);
      const profile = target.profile ?? DEFAULT_PROFILE;
      if (options.tokenStore) updateProfile(profile, { tokenStore: options.tokenStore });
      if (options.idTokenFile) useIdTokenFile(options.idTokenFile);
      if (options.clientCredentials && ciMode() !== 'client-credentials') {
        throw new CliError(
          '--client-credentials needs HOOPCTL_CLIENT_ID and HOOPCTL_CLIENT_SECRET',
          ExitCode.usage,
        );
      }
      let me: WhoAmI;
      if (options.clientCredentials || options.idTokenFile || ciMode()) {
        me = await checkCiCredentials(target);
      } else if (options.withToken) {
        me = await loginWithToken(target);
      } else {
        const { deviceLogin } = await import('./device-login.js');
        await deviceLogin(target, options.browser);
        me = await whoami(target);
        printWhoAmI(target, me);
      }
      if (!ciMode()) updateProfile(profile, { gateway: target.url, subject: me.identity.subject });
      if (options.gateway && ciMode()) updateProfile(profile, { gateway: target.url });
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
      const target = resolveGateway(options.gateway);
      const me = await whoami(target);
      if (options.json) printJson(me, options.json);
      else printWhoAmI(target, me);
    });

  program
    .command('token')
    .description('Print a current access token for this identity on stdout (renewed as needed)')
    .option(GATEWAY_FLAG, GATEWAY_HELP)
    .option(
      JSON_OPTION_FLAGS,
      jsonOptionHelp(
        '{ token, expires_at, identity: { subject, name, issuer, kind }, gateway, profile, mode }',
      ),
    )
    .addHelpText(
      'after',
      `
For tools that take a bearer token: the logged-in identity's, the client-credentials service
account's, or the workload ID token, whichever the environment selects (as every command does).
The token is a secret: do not log it.

Examples:
  curl -H "Authorization: Bearer $(hoopctl token)" https://gateway.example.com:8443/v1/whoami
  hoopctl token --json expires_at`,
    )
    .action(async (options: { gateway?: string; json?: boolean | string }) => {
      const target = resolveGateway(options.gateway);
      const token = await getAccessToken(target);
      if (!options.json) {
        process.stdout.write(`${token}\n`);
        return;
      }
      const claims = jwtClaims(token) ?? {};
      const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
      printJson(
        {
          token,
          expires_at: tokenExpiry(token)?.toISOString() ?? null,
          identity: {
            subject: text(claims.sub),
            name: text(claims.email) ?? text(claims.name),
            issuer: text(claims.iss),
          },
          gateway: target.url,
          profile: target.profile ?? DEFAULT_PROFILE,
          mode: tokenMode(),
        },
        options.json,
      );
    });

  program
    .command('status')
    .description('Who you are, on which gateway and profile, until when, and the access granted to you now')
    .option(GATEWAY_FLAG, GATEWAY_HELP)
    .option(
      JSON_OPTION_FLAGS,
      jsonOptionHelp(
        '{ profile, gateway: { url, version, reachable, error? }, login: { mode, store?, logged_in }, identity?, token_expires_at?, roles?, grants: [...] }',
      ),
    )
    .addHelpText(
      'after',
      `
Exit code 0 when the gateway accepts your token, 3 when you are not logged in (or the token is
refused), 1 when the gateway cannot be reached.

Examples:
  hoopctl status
  hoopctl --profile staging status --json`,
    )
    .action(async (options: { gateway?: string; json?: boolean | string }) => {
      const { status, exitCode } = await collectStatus(resolveGateway(options.gateway));
      if (options.json) printJson(status, options.json);
      else printStatus(status);
      process.exitCode = exitCode;
    });
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
  saveLogin(target, isAccessToken ? { ...base, accessToken: token } : { ...base, refreshToken: token });
  let me: WhoAmI;
  try {
    me = await whoami(target);
  } catch (err) {
    clearTokens(target);
    throw err;
  }
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

// ---------------------------------------------------------------------------------------------
// hoopctl status

interface Status {
  profile: string;
  gateway: { url: string; version?: string; reachable: boolean; error?: string };
  login: { mode: string; store?: string; logged_in: boolean; error?: string };
  identity?: WhoAmI['identity'];
  policies?: string[];
  roles?: string[];
  token_expires_at?: string;
  grants: { id: string; policy: string; connection: string; expires_at?: string }[];
}

async function collectStatus(target: GatewayTarget): Promise<{ status: Status; exitCode: number }> {
  const mode = tokenMode();
  const stored = mode === 'login' ? storedLogin(target) : undefined;
  const status: Status = {
    profile: target.profile ?? DEFAULT_PROFILE,
    gateway: { url: target.url, reachable: false },
    login: {
      mode:
        mode === 'login' ? 'device login' : mode === 'id-token' ? 'workload ID token' : 'client credentials',
      store: stored ? (stored.store === 'file' ? `file ${tokenFilePath(target)}` : 'OS keychain') : undefined,
      logged_in: mode !== 'login' || stored !== undefined,
    },
    grants: [],
  };
  try {
    status.gateway.version = (await gatewayDiscovery(target)).version;
    status.gateway.reachable = true;
  } catch (err) {
    status.gateway.error = (err as Error).message;
    return { status, exitCode: ExitCode.error };
  }
  if (!status.login.logged_in) return { status, exitCode: ExitCode.notAuthenticated };
  try {
    const token = await getAccessToken(target);
    const me = await apiRequest<WhoAmI>(target, 'GET', '/v1/whoami', { token });
    status.identity = me.identity;
    status.policies = me.policies;
    status.roles = [me.review && 'review', me.audit && 'audit', me.admin && 'admin'].filter(
      (r): r is string => Boolean(r),
    );
    status.token_expires_at = tokenExpiry(token)?.toISOString() ?? me.token_expires_at;
    const mine = await apiRequest<AccessRequestListResponse>(target, 'GET', '/v1/access-requests', { token });
    status.grants = mine.access_requests
      .filter((r) => r.active)
      .map((r) => ({ id: r.id, policy: r.policy, connection: r.connection, expires_at: r.expires_at }));
    return { status, exitCode: ExitCode.ok };
  } catch (err) {
    status.login.error = (err as Error).message;
    status.login.logged_in = false;
    return { status, exitCode: err instanceof CliError ? err.exitCode : ExitCode.error };
  }
}

function printStatus(s: Status): void {
  const rows: [string, string][] = [
    ['profile', s.profile],
    [
      'gateway',
      `${s.gateway.url} ${s.gateway.reachable ? c.green(`reachable, version ${s.gateway.version}`) : c.red(`unreachable: ${s.gateway.error}`)}`,
    ],
  ];
  if (s.gateway.reachable) {
    const login = s.login.logged_in
      ? `${s.login.mode}${s.login.store ? `, tokens in ${s.login.store}` : ''}`
      : c.red(
          s.login.error ?? `not logged in: run ${loginCommand({ url: s.gateway.url, profile: s.profile })}`,
        );
    rows.push(['login', login]);
  }
  if (s.identity) {
    rows.push([
      'identity',
      `${s.identity.subject}${s.identity.name && s.identity.name !== s.identity.subject ? ` (${s.identity.name})` : ''}, ${s.identity.kind}`,
    ]);
    rows.push(['groups', s.identity.groups.join(', ') || '(none)']);
    rows.push(['policies', s.policies?.join(', ') || '(none)']);
    if (s.roles?.length) rows.push(['may', s.roles.join(', ')]);
    if (s.token_expires_at)
      rows.push(['token', `expires ${s.token_expires_at} (${fromNow(s.token_expires_at)})`]);
    rows.push([
      'grants',
      s.grants.length
        ? s.grants
            .map((g) => `${g.policy} on ${g.connection} until ${g.expires_at ?? '?'} (${g.id})`)
            .join('\n          ')
        : '(none active)',
    ]);
  }
  for (const [label, value] of rows) process.stdout.write(`${c.dim(label.padEnd(9))} ${value}\n`);
}

function fromNow(iso: string): string {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (seconds <= 0) return 'expired';
  if (seconds < 120) return `in ${seconds}s`;
  if (seconds < 7200) return `in ${Math.round(seconds / 60)}m`;
  return `in ${Math.round(seconds / 3600)}h`;
}
