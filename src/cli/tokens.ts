/**
 * Where the CLI's bearer token comes from, in this order:
 *   1. a workload ID token (--id-token-file, --id-token or HOOPCTL_ID_TOKEN), sent as it is;
 *   2. client credentials (--client-id + --client-secret, or HOOPCTL_CLIENT_ID + HOOPCTL_CLIENT_SECRET)
 *      against the issuer the gateway advertises;
 *   3. the login `hoopctl login` saved for this profile and gateway: a refresh token in the OS keychain (or a
 *      0600 file where there is none) and the current access token, renewed whenever it is within 30 s
 *      of expiry.
 * Modes 1 and 2 are CI mode: nothing is read from or written to disk besides the ID token file.
 *
 * openid-client and the keychain's native module are loaded only when a command needs them: a command
 * whose stored access token is still fresh never loads either.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Entry } from '@napi-rs/keyring';
import type * as Oidc from 'openid-client';
import type { GatewayDiscovery } from '../shared/api.js';
import { DISCOVERY_PATH } from '../shared/api.js';
import { CliError, ExitCode } from '../shared/errors.js';
import { fetchTrustingCa } from '../shared/fetch-with-ca.js';
import { apiRequest, type GatewayTarget, rawRequest } from './api.js';
import { warn } from './output.js';
import {
  configuredGateway,
  currentProfile,
  DEFAULT_PROFILE,
  globalSetting,
  homeDir,
  idTokenFileFlag,
  profileSettings,
  resolveGateway,
  writePrivateFile,
} from './settings.js';

/** What `hoopctl login` keeps per profile and gateway. */
export interface StoredLogin {
  issuer: string;
  clientId: string;
  audience: string;
  refreshToken?: string;
  /** The current access token (a cache: renewed from the refresh token when it runs out). */
  accessToken?: string;
}

/** Refresh this long before expiry, so a token never dies in flight. */
const EXPIRY_MARGIN_MS = 30_000;
const KEYCHAIN_SERVICE = 'hoopctl';

const loadOidc = (): Promise<typeof Oidc> => import('openid-client');

// ---------------------------------------------------------------------------------------------
// The token source.

/** `--id-token-file PATH` (a global option): the workload token's file, read at each use (never persisted). */
const idTokenFile = () => idTokenFileFlag();

export type TokenMode = 'id-token' | 'client-credentials' | 'login';

/**
 * Which non-interactive credentials the environment provides, if any. Half a pair is a mistake, never
 * a silent fall-back to the stored login (a CI job would act as whoever last logged in on the runner).
 */
export function ciMode(): 'id-token' | 'client-credentials' | undefined {
  if (idTokenFile() || globalSetting('idToken')) return 'id-token';
  const id = globalSetting('clientId');
  const secret = globalSetting('clientSecret');
  if (id && secret) return 'client-credentials';
  if (id) {
    throw new CliError(
      `${id.from} is set but --client-secret / HOOPCTL_CLIENT_SECRET is not: give both for client credentials, or drop ${id.from} to use your login`,
      ExitCode.usage,
    );
  }
  if (secret) {
    throw new CliError(
      `${secret.from} is set but --client-id / HOOPCTL_CLIENT_ID is not: give the client id too, or drop the secret`,
      ExitCode.usage,
    );
  }
  return undefined;
}

/** The client id and secret of client-credentials mode (ciMode() said both are there). */
function clientCredentials(): { id: string; secret: string } {
  return { id: globalSetting('clientId')!.value, secret: globalSetting('clientSecret')!.value };
}

export function tokenMode(): TokenMode {
  return ciMode() ?? 'login';
}

/** Access tokens in memory (client credentials); one renewal at a time per key. */
const accessTokens = new Map<string, string>();
const inFlight = new Map<string, Promise<string>>();

const profileOf = (target: GatewayTarget) => target.profile ?? DEFAULT_PROFILE;
const loginKey = (target: GatewayTarget) => `login ${profileOf(target)} ${target.url}`;

/** "https://gw (profile prod)". */
function where(target: GatewayTarget): string {
  return `${target.url} (profile ${profileOf(target)})`;
}

/** A bearer token for the gateway, fresh for at least 30 s; CliError exit 3 when there is none. */
export async function getAccessToken(target: GatewayTarget): Promise<string> {
  const mode = ciMode();
  if (mode === 'id-token') return workloadIdToken();
  // Keyed by the credentials too: another client id or secret must never reuse a cached token.
  const key = mode === 'client-credentials' ? clientCredentialsKey(target) : loginKey(target);
  let pending = inFlight.get(key);
  if (!pending) {
    pending = (
      mode === 'client-credentials' ? clientCredentialsToken(target, key) : loginToken(target)
    ).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

function clientCredentialsKey(target: GatewayTarget): string {
  const { id, secret } = clientCredentials();
  return `cc ${target.url} ${id} ${hashOf(secret)}`;
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** A JWT's payload, or undefined when the token is not a JWT. Nothing is verified: the gateway does that. */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** When a JWT expires (undefined when it is not a JWT or carries no exp). */
export function tokenExpiry(token: string): Date | undefined {
  const exp = jwtClaims(token)?.exp;
  return typeof exp === 'number' ? new Date(exp * 1000) : undefined;
}

function isFresh(token: string): boolean {
  const expiry = tokenExpiry(token);
  return expiry === undefined || expiry.getTime() - Date.now() > EXPIRY_MARGIN_MS;
}

function workloadIdToken(): string {
  let token: string;
  let source: string;
  const file = idTokenFile();
  if (file) {
    source = file;
    try {
      // Read every time: CI runners and Kubernetes rewrite projected token files in place.
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new CliError(
        `cannot read the ID token file ${file} (--id-token-file): ${(err as Error).message}`,
        ExitCode.usage,
      );
    }
  } else {
    const given = globalSetting('idToken');
    source = given?.from ?? 'HOOPCTL_ID_TOKEN';
    token = (given?.value ?? '').trim();
  }
  if (!token) throw new CliError(`the ID token in ${source} is empty`, ExitCode.notAuthenticated);
  const expiry = tokenExpiry(token);
  if (expiry && expiry.getTime() <= Date.now()) {
    throw new CliError(
      `the ID token in ${source} expired at ${expiry.toISOString()}: ask the CI provider for a new one`,
      ExitCode.notAuthenticated,
    );
  }
  return token;
}

async function clientCredentialsToken(target: GatewayTarget, cacheKey: string): Promise<string> {
  const cached = accessTokens.get(cacheKey);
  if (cached && isFresh(cached)) return cached;
  const oidc = await loadOidc();
  const discovery = await gatewayDiscovery(target);
  const { id: clientId, secret } = clientCredentials();
  const config = await issuerConfiguration(
    target,
    discovery.issuer,
    clientId,
    oidc.ClientSecretBasic(secret),
  );
  try {
    const tokens = await oidc.clientCredentialsGrant(config, { resource: discovery.audience });
    accessTokens.set(cacheKey, tokens.access_token);
    return tokens.access_token;
  } catch (err) {
    const reason = await oauthErrorReason(err);
    if (reason?.startsWith('invalid_client') || reason?.startsWith('unauthorized_client')) {
      throw new CliError(
        `the identity provider ${discovery.issuer} refused client ${clientId} (${reason}): check ${globalSetting('clientId')?.from} and ${globalSetting('clientSecret')?.from}`,
        ExitCode.notAuthenticated,
      );
    }
    if (reason) {
      throw new CliError(
        `the identity provider ${discovery.issuer} refused client ${clientId} (${reason})`,
        ExitCode.notAuthenticated,
      );
    }
    throw new CliError(`cannot get a token for client ${clientId}: ${(err as Error)?.message ?? err}`);
  }
}

async function loginToken(target: GatewayTarget): Promise<string> {
  const stored = loadLogin(target);
  if (!stored) throw notLoggedIn(target);
  const { login, store } = stored;
  if (login.accessToken && isFresh(login.accessToken)) return login.accessToken;
  if (!login.refreshToken) {
    throw new CliError(
      `your session at ${where(target)} has ended: run ${loginCommand(target)}`,
      ExitCode.notAuthenticated,
    );
  }
  const oidc = await loadOidc();
  const config = await issuerConfiguration(target, login.issuer, login.clientId, oidc.None());
  let tokens: Oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.refreshTokenGrant(config, login.refreshToken, { resource: login.audience });
  } catch (err) {
    const reason = await oauthErrorReason(err);
    if (reason?.startsWith('invalid_grant')) {
      // The IdP ended the session (revoked, expired, user disabled): the refresh token is worthless now.
      clearStoredLogin(target);
    }
    if (reason) {
      throw new CliError(
        `your session at ${where(target)} could not be renewed (${reason}): run ${loginCommand(target)}`,
        ExitCode.notAuthenticated,
      );
    }
    throw new CliError(
      `your session at ${where(target)} could not be renewed: ${(err as Error)?.message ?? err}`,
    );
  }
  writeLogin(
    target,
    {
      ...login,
      refreshToken: tokens.refresh_token ?? login.refreshToken,
      accessToken: tokens.access_token,
    },
    store,
  );
  return tokens.access_token;
}

/**
 * The gateway of whoami / token: with none given or remembered, nobody has logged in with this profile
 * (exit 3, saying how to) — unless CI credentials are given, when the missing gateway is a usage error.
 */
export function loggedInGateway(flag?: string): GatewayTarget {
  const target = configuredGateway(flag);
  if (target) return target;
  if (ciMode()) return resolveGateway(flag);
  throw notLoggedInAnywhere(currentProfile());
}

/** Not logged in, and no gateway to name: say to log in with one. */
export function notLoggedInAnywhere(profile: string): CliError {
  const flag = profile === DEFAULT_PROFILE ? '' : ` --profile ${profile}`;
  return new CliError(
    `not logged in (profile ${profile} has no gateway): run hoopctl login${flag} --gateway URL`,
    ExitCode.notAuthenticated,
  );
}

/** `hoopctl login`, with the flags that select this profile and gateway. */
export function loginCommand(target: GatewayTarget): string {
  const profile = profileOf(target);
  return `hoopctl login${profile === DEFAULT_PROFILE ? '' : ` --profile ${profile}`} --gateway ${target.url}`;
}

/**
 * "Not logged in", naming the gateway and profile it looked up — and the near miss people hit most:
 * a login saved for http://127.0.0.1:8443 when the command asked for http://localhost:8443.
 */
function notLoggedIn(target: GatewayTarget): CliError {
  const near = storedGateways(target).find((url) => sameLoopbackPort(url, target.url));
  const hint = near
    ? `; you are logged in to ${near}, which is the same machine under another name: use --gateway ${near} (or HOOPCTL_GATEWAY), or log in again`
    : '';
  return new CliError(
    `not logged in to ${where(target)}: run ${loginCommand(target)}${hint}`,
    ExitCode.notAuthenticated,
  );
}

function sameLoopbackPort(a: string, b: string): boolean {
  const x = new URL(a);
  const y = new URL(b);
  const loopback = (h: string) => h === 'localhost' || h === '[::1]' || /^127\./.test(h);
  return x.href !== y.href && x.port === y.port && loopback(x.hostname) && loopback(y.hostname);
}

/** Gateways with a login in this profile's token file (the keychain cannot be listed). */
function storedGateways(target: GatewayTarget): string[] {
  try {
    return Object.keys(readTokenFile(target).gateways);
  } catch {
    return [];
  }
}

/** The OAuth error an IdP answered with (`invalid_grant: ...`), from a body or a WWW-Authenticate challenge. */
export async function oauthErrorReason(err: unknown): Promise<string | undefined> {
  const oidc = await loadOidc();
  const describe = (error?: string, description?: string) =>
    error ? (description ? `${error}: ${description}` : error) : undefined;
  if (err instanceof oidc.ResponseBodyError) return describe(err.error, err.error_description);
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const parameters = err.cause[0]?.parameters;
    return describe(parameters?.error, parameters?.error_description) ?? `HTTP ${err.status}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The gateway's discovery and the issuer's configuration (both cached for the process).

const discoveries = new Map<string, Promise<GatewayDiscovery>>();

/**
 * GET /.well-known/hoop-gateway: where this gateway wants us to authenticate. A server that is not a
 * gateway gets a message saying what it seems to be (an OIDC issuer is the usual mistake).
 */
export function gatewayDiscovery(target: GatewayTarget): Promise<GatewayDiscovery> {
  let pending = discoveries.get(target.url);
  if (!pending) {
    pending = fetchDiscovery(target);
    pending.catch(() => discoveries.delete(target.url));
    discoveries.set(target.url, pending);
  }
  return pending;
}

async function fetchDiscovery(target: GatewayTarget): Promise<GatewayDiscovery> {
  const answer = await rawRequest(target, 'GET', DISCOVERY_PATH);
  if (answer.status === 200) {
    try {
      const parsed = JSON.parse(answer.body) as GatewayDiscovery;
      if (parsed.issuer && parsed.client_id) return parsed;
    } catch {
      // fall through to the explanation below
    }
  }
  const issuer = await rawRequest(target, 'GET', '/.well-known/openid-configuration')
    .then((r) => (r.status === 200 ? (JSON.parse(r.body) as { issuer?: string }).issuer : undefined))
    .catch(() => undefined);
  if (issuer) {
    throw new CliError(
      `${target.url} is an identity provider (issuer ${issuer}), not a hoop gateway: give the gateway's URL with --gateway (or HOOPCTL_GATEWAY)`,
      ExitCode.usage,
    );
  }
  throw new CliError(
    `${target.url} is not a hoop gateway (GET ${DISCOVERY_PATH} answered ${answer.status}${answer.contentType ? `, ${answer.contentType.split(';')[0]}` : ''}): check the URL`,
    ExitCode.usage,
  );
}

/**
 * openid-client's view of the issuer. The gateway's CA file (HOOPCTL_CA_FILE) is trusted for the issuer
 * too, since private deployments tend to put both behind one CA. Plain http is allowed only on loopback.
 */
export async function issuerConfiguration(
  target: GatewayTarget,
  issuer: string,
  clientId: string,
  auth: Oidc.ClientAuth,
): Promise<Oidc.Configuration> {
  const oidc = await loadOidc();
  const url = new URL(issuer);
  const fetcher = fetchTrustingCa(target.caFile) as Oidc.CustomFetch;
  const execute =
    url.protocol === 'http:' && isLoopbackHost(url.hostname) ? [oidc.allowInsecureRequests] : [];
  try {
    const config = await oidc.discovery(url, clientId, undefined, auth, {
      execute,
      [oidc.customFetch]: fetcher,
    });
    config[oidc.customFetch] = fetcher;
    return config;
  } catch (err) {
    throw new CliError(`cannot use the identity provider ${issuer}: ${(err as Error).message}`);
  }
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

// ---------------------------------------------------------------------------------------------
// Storage: the OS keychain, or a 0600 file where no keychain is usable; one of each per profile.

export type StoreKind = 'keychain' | 'file';

/** --token-store / HOOPCTL_TOKEN_STORE, else the profile's choice; otherwise the keychain, falling back to the file. */
function forcedStore(target: GatewayTarget): StoreKind | undefined {
  const given = globalSetting('tokenStore');
  if (!given) return profileSettings(profileOf(target)).tokenStore;
  return checkTokenStore(given.value, given.from);
}

/** keychain or file; anything else is a usage error naming where it came from. */
export function checkTokenStore(value: string, from: string): StoreKind {
  const kind = value.trim().toLowerCase();
  if (kind === 'keychain' || kind === 'file') return kind;
  throw new CliError(`${from} must be keychain or file, not "${value}"`, ExitCode.usage);
}

/**
 * Save what `hoopctl login` obtained; returns where it went. `warnLater` (login --with-token, whose
 * token is checked only after it is saved): the file fall-back warning waits for announceSavedLogin(),
 * so a token the gateway refuses is never said to be "kept".
 */
export function saveLogin(target: GatewayTarget, login: StoredLogin, warnLater = false): StoreKind {
  const forced = forcedStore(target);
  if (forced) {
    writeLogin(target, login, forced);
    return forced;
  }
  try {
    writeLogin(target, login, 'keychain');
    removeFromFile(target);
    return 'keychain';
  } catch (err) {
    // keychainUnusable() wraps the platform's error; show only the platform's reason.
    const why = String((err as { cause?: unknown }).cause ?? (err as Error).message);
    pendingWarning = () => warnFileFallback(target, why);
    if (!warnLater) announceSavedLogin();
    writeLogin(target, login, 'file');
    return 'file';
  }
}

let pendingWarning: (() => void) | undefined;
/** The file fall-back warning saveLogin(…, warnLater) held back: say it now that the login stands. */
export function announceSavedLogin(): void {
  pendingWarning?.();
  pendingWarning = undefined;
}

/** Forget the login for this profile and gateway (keychain and file); returns what was stored, if anything. */
export function clearTokens(target: GatewayTarget): StoredLogin | undefined {
  const stored = loadLogin(target)?.login;
  clearStoredLogin(target);
  return stored;
}

/** The stored login and where it is, without renewing anything (status, --version). */
export function storedLogin(target: GatewayTarget): { login: StoredLogin; store: StoreKind } | undefined {
  return loadLogin(target);
}

function clearStoredLogin(target: GatewayTarget): void {
  accessTokens.delete(loginKey(target));
  if (forcedStore(target) !== 'file') {
    try {
      keychainEntry(target).deletePassword();
    } catch {
      // No keychain, or nothing in it: nothing to forget there.
    }
  }
  removeFromFile(target);
}

function loadLogin(target: GatewayTarget): { login: StoredLogin; store: StoreKind } | undefined {
  const forced = forcedStore(target);
  if (forced !== 'file') {
    try {
      const value = keychainEntry(target).getPassword();
      if (value) return { login: JSON.parse(value) as StoredLogin, store: 'keychain' };
    } catch (err) {
      if (forced === 'keychain') throw keychainUnusable(err);
    }
    if (forced === 'keychain') return undefined;
  }
  const login = readTokenFile(target).gateways[target.url];
  return login ? { login, store: 'file' } : undefined;
}

function writeLogin(target: GatewayTarget, login: StoredLogin, store: StoreKind): void {
  if (store === 'keychain') {
    try {
      keychainEntry(target).setPassword(JSON.stringify(login));
    } catch (err) {
      throw keychainUnusable(err);
    }
    return;
  }
  const file = readTokenFile(target);
  file.gateways[target.url] = login;
  writeTokenFile(target, file);
}

let keyring: typeof import('@napi-rs/keyring') | undefined;
/**
 * On Linux only the Secret Service (gnome-keyring, KWallet, KeePassXC) counts as a keychain: without it
 * @napi-rs/keyring would fall back to the kernel keyring, which is memory-only and loses the login at
 * every reboot. Requiring it makes the constructor throw there, and we fall back to the file.
 * The default profile keeps the account name earlier versions used (the gateway URL).
 */
function keychainEntry(target: GatewayTarget): Entry {
  keyring ??= createRequire(import.meta.url)('@napi-rs/keyring') as typeof import('@napi-rs/keyring');
  const profile = profileOf(target);
  const account = profile === DEFAULT_PROFILE ? target.url : `${profile} ${target.url}`;
  return new keyring.Entry(KEYCHAIN_SERVICE, account, { linux: { store: 'secret-service' } });
}

function keychainUnusable(err: unknown): CliError {
  const error = new CliError(
    `the OS keychain is not usable here (${(err as Error).message}); use --token-store file (or HOOPCTL_TOKEN_STORE=file)`,
  );
  error.cause = (err as Error).message;
  return error;
}

let warnedFileFallback = false;
function warnFileFallback(target: GatewayTarget, why: string): void {
  if (warnedFileFallback) return;
  warnedFileFallback = true;
  const reason = why
    .split('\n')[0]!
    .replace(/\s*\(.*$/, '')
    .slice(0, 80);
  warn(
    `no OS keychain (${reason}): refresh token kept in ${tokenFilePath(target)} (mode 0600); HOOPCTL_TOKEN_STORE=file silences this`,
  );
}

interface TokenFile {
  version: 1;
  gateways: Record<string, StoredLogin>;
}

/** tokens.json for the default profile (where earlier versions kept it), tokens-NAME.json for others. */
export function tokenFilePath(target: GatewayTarget): string {
  const profile = profileOf(target);
  return join(homeDir(), profile === DEFAULT_PROFILE ? 'tokens.json' : `tokens-${profile}.json`);
}

function readTokenFile(target: GatewayTarget): TokenFile {
  const path = tokenFilePath(target);
  if (!existsSync(path)) return { version: 1, gateways: {} };
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<TokenFile>;
    return { version: 1, gateways: parsed.gateways ?? {} };
  } catch (err) {
    throw new CliError(
      `cannot read ${path}: ${(err as Error).message} (delete it and run ${loginCommand(target)})`,
    );
  }
}

function writeTokenFile(target: GatewayTarget, file: TokenFile): void {
  writePrivateFile(tokenFilePath(target), `${JSON.stringify(file, null, 2)}\n`);
}

function removeFromFile(target: GatewayTarget): void {
  const path = tokenFilePath(target);
  if (!existsSync(path)) return;
  const file = readTokenFile(target);
  if (!(target.url in file.gateways)) return;
  delete file.gateways[target.url];
  if (Object.keys(file.gateways).length === 0) rmSync(path, { force: true });
  else writeTokenFile(target, file);
}

/** Forget every login of a profile (profile remove): its token file and its keychain entries. */
export function clearProfileTokens(profile: string, gateways: string[]): void {
  const file = readTokenFile({ url: '', profile });
  for (const url of new Set([...gateways, ...Object.keys(file.gateways)])) clearStoredLogin({ url, profile });
  rmSync(tokenFilePath({ url: '', profile }), { force: true });
}

/** Helpers for `apiRequest` with the token attached, used by most commands. */
export async function authed<T>(target: GatewayTarget, method: string, path: string, body?: unknown) {
  return apiRequest<T>(target, method, path, { token: await getAccessToken(target), body });
}
