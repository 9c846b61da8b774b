/**
 * hoopctl status / token: what a person or a script needs to know about the current login — who, on
 * which gateway and profile, until when, with which grants — and a bearer token for other tools.
 */
import type { Command } from 'commander';
import type { AccessRequestListResponse, WhoAmI } from '../../shared/api.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget } from '../api.js';
import { c, JSON_OPTION_FLAGS, jsonOptionHelp, printJson, warn } from '../output.js';
import { configuredGateway, currentProfile, DEFAULT_PROFILE } from '../settings.js';
import {
  ciMode,
  gatewayDiscovery,
  getAccessToken,
  jwtClaims,
  loggedInGateway,
  loginCommand,
  notLoggedInAnywhere,
  storedLogin,
  tokenExpiry,
  tokenFilePath,
  tokenMode,
} from '../tokens.js';

const GATEWAY_FLAG = '--gateway <url>';
const GATEWAY_HELP = 'gateway URL (default: HOOPCTL_GATEWAY or the profile’s, which login remembers)';

export function registerStatusCommands(program: Command): void {
  program
    .command('token')
    .description('Print a current access token for this identity on stdout (renewed as needed)')
    .option(GATEWAY_FLAG, GATEWAY_HELP)
    .option(
      JSON_OPTION_FLAGS,
      jsonOptionHelp(
        '{ token, expires_at, identity: { subject, name, issuer, kind, groups }, identity_from, gateway, profile, mode }',
      ),
    )
    .addHelpText(
      'after',
      `
For tools that take a bearer token: the logged-in identity's, the client-credentials service
account's, or the workload ID token, whichever the environment selects (as every command does).
--json's identity is the gateway's (as whoami shows it, after the issuer's claims mapping); when the
gateway cannot be reached it is read from the token itself (identity_from "token", raw claims such
as sub; a warning on stderr says so). The token is a secret: do not log it. It is also the password of the gateway's native PostgreSQL
listener, when the gateway has one (listen.postgres; the database is the connection name):
  PGPASSWORD="$(hoopctl token)" psql "host=GATEWAY port=5432 dbname=prod-db user=me sslmode=verify-full"

Examples:
  curl -H "Authorization: Bearer $(hoopctl token)" https://gateway.example.com:8443/v1/whoami
  hoopctl token --json expires_at`,
    )
    .action(async (options: { gateway?: string; json?: boolean | string }) => {
      const target = loggedInGateway(options.gateway);
      const token = await getAccessToken(target);
      if (!options.json) {
        process.stdout.write(`${token}\n`);
        return;
      }
      const { identity, from } = await identityOfToken(target, token);
      printJson(
        {
          token,
          expires_at: tokenExpiry(token)?.toISOString() ?? null,
          identity,
          identity_from: from,
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
refused, or the profile has no gateway yet: gateway.url is then null), 1 when the gateway cannot
be reached.

Examples:
  hoopctl status
  hoopctl --profile staging status --json`,
    )
    .action(async (options: { gateway?: string; json?: boolean | string }) => {
      const target = configuredGateway(options.gateway);
      const { status, exitCode } =
        target || ciMode() ? await collectStatus(loggedInGateway(options.gateway)) : noGateway();
      if (options.json) printJson(status, options.json);
      else printStatus(status);
      process.exitCode = exitCode;
    });
}

interface TokenIdentity {
  subject?: string;
  name?: string;
  issuer?: string;
  kind?: string;
  groups?: string[];
}

/**
 * Who the token stands for, as the gateway maps it (whoami: `claims.subject` may turn a CI token's
 * `sub` into `acme/app`). Offline, the token's own claims, said on stderr; a refusal still ends the command.
 */
async function identityOfToken(
  target: GatewayTarget,
  token: string,
): Promise<{ identity: TokenIdentity; from: 'gateway' | 'token' }> {
  try {
    const { identity } = await apiRequest<WhoAmI>(target, 'GET', '/v1/whoami', { token });
    const { subject, name, issuer, kind, groups } = identity;
    return { identity: { subject, name, issuer, kind, groups }, from: 'gateway' };
  } catch (err) {
    if (!(err instanceof CliError) || err.exitCode !== ExitCode.error) throw err;
    warn(`identity read from the token itself, not mapped by the gateway: ${err.message}`);
    const claims = jwtClaims(token) ?? {};
    const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
    const identity = {
      subject: text(claims.sub),
      name: text(claims.email) ?? text(claims.name),
      issuer: text(claims.iss),
    };
    return { identity, from: 'token' };
  }
}

// ---------------------------------------------------------------------------------------------
// hoopctl status

interface Status {
  profile: string;
  /** url is null when the profile has no gateway yet (never logged in). */
  gateway: { url: string | null; version?: string; reachable: boolean; error?: string };
  login: { mode: string; store?: string; logged_in: boolean; error?: string };
  identity?: WhoAmI['identity'];
  policies?: string[];
  roles?: string[];
  token_expires_at?: string;
  grants: { id: string; policy: string; connection: string; expires_at?: string }[];
}

/** No gateway given or remembered: nobody logged in with this profile yet. */
function noGateway(): { status: Status; exitCode: number } {
  const profile = currentProfile();
  const status: Status = {
    profile,
    gateway: { url: null, reachable: false },
    login: { mode: 'device login', logged_in: false, error: notLoggedInAnywhere(profile).message },
    grants: [],
  };
  return { status, exitCode: ExitCode.notAuthenticated };
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
  if (s.gateway.url === null) {
    process.stdout.write(
      `${c.dim('profile'.padEnd(9))} ${s.profile}\n${c.dim('login'.padEnd(9))} ${c.red(s.login.error ?? '')}\n`,
    );
    return;
  }
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
