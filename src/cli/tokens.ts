/**
 * Where the CLI's bearer token comes from, in this order:
 *   1. a workload ID token (HOOPCTL_ID_TOKEN, or the file given by --id-token-file), sent as it is;
 *   2. client credentials (HOOPCTL_CLIENT_ID + HOOPCTL_CLIENT_SECRET) against the issuer the gateway advertises;
 *   3. the login `hoopctl login` saved: a refresh token in the OS keychain (or a 0600 file where there is
 *      none), traded for a fresh access token whenever the current one is within 30 s of expiry.
 * Modes 1 and 2 are CI mode: nothing is read from or written to disk besides the ID token file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Entry } from '@napi-rs/keyring';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { GatewayDiscovery } from '../shared/api.js';
import { DISCOVERY_PATH } from '../shared/api.js';
import { CliError, ExitCode } from '../shared/errors.js';
import { fetchTrustingCa } from '../shared/fetch-with-ca.js';
import { apiRequest, type GatewayTarget } from './api.js';
import { warn } from './output.js';
import { homeDir } from './settings.js';

/** What `hoopctl login` keeps per gateway. */
export interface StoredLogin {
  issuer: string;
  clientId: string;
  audience: string;
  refreshToken?: string;
  /** Kept only in the file store; the keychain store keeps access tokens in memory. */
  accessToken?: string;
}

/** Refresh this long before expiry, so a token never dies in flight. */
const EXPIRY_MARGIN_MS = 30_000;
const KEYCHAIN_SERVICE = 'hoopctl';
const TOKEN_FILE = 'tokens.json';

// ---------------------------------------------------------------------------------------------
// The token source.

let idTokenFile: string | undefined;

/** `--id-token-file PATH`: use this workload token for the rest of this process (never persisted). */
export function useIdTokenFile(path: string): void {
  idTokenFile = path;
}

/** Which non-interactive credentials the environment provides, if any. */
export function ciMode(): 'id-token' | 'client-credentials' | undefined {
  if (idTokenFile || process.env.HOOPCTL_ID_TOKEN) return 'id-token';
  if (process.env.HOOPCTL_CLIENT_ID && process.env.HOOPCTL_CLIENT_SECRET) return 'client-credentials';
  return undefined;
}

/** Access tokens kept in memory only: client credentials, and logins whose refresh token is in the keychain. */
const accessTokens = new Map<string, string>();
const inFlight = new Map<string, Promise<string>>();

/** A bearer token for the gateway, fresh for at least 30 s; CliError exit 3 when there is none. */
export async function getAccessToken(target: GatewayTarget): Promise<string> {
  const mode = ciMode();
  if (mode === 'id-token') return workloadIdToken();
  // Keyed by the credentials too: another client id or secret must never reuse a cached token.
  const key =
    mode === 'client-credentials'
      ? `cc ${target.url} ${process.env.HOOPCTL_CLIENT_ID} ${hashOf(process.env.HOOPCTL_CLIENT_SECRET!)}`
      : `login ${target.url}`;
  // One renewal at a time per gateway: `connect` may ask from many client connections at once.
  let pending = inFlight.get(key);
  if (!pending) {
    pending = (
      mode === 'client-credentials' ? clientCredentialsToken(target, key) : loginToken(target, key)
    ).finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
  }
  return pending;
}

function hashOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** When a JWT expires (undefined when it is not a JWT or carries no exp). */
export function tokenExpiry(token: string): Date | undefined {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

function isFresh(token: string): boolean {
  const expiry = tokenExpiry(token);
  return expiry === undefined || expiry.getTime() - Date.now() > EXPIRY_MARGIN_MS;
}

function workloadIdToken(): string {
  let token: string;
  let source: string;
  if (idTokenFile) {
    source = idTokenFile;
    try {
      // Read every time: CI runners and Kubernetes rewrite projected token files in place.
      token = readFileSync(idTokenFile, 'utf8').trim();
    } catch (err) {
      throw new CliError(
        `cannot read the ID token file ${idTokenFile}: ${(err as Error).message}`,
        ExitCode.usage,
      );
    }
  } else {
    source = 'HOOPCTL_ID_TOKEN';
    token = (process.env.HOOPCTL_ID_TOKEN ?? '').trim();
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
  const discovery = await gatewayDiscovery(target);
  const clientId = process.env.HOOPCTL_CLIENT_ID!;
  const config = await issuerConfiguration(
    target,
    discovery.issuer,
    clientId,
    oidc.ClientSecretBasic(process.env.HOOPCTL_CLIENT_SECRET!),
  );
  try {
    const tokens = await oidc.clientCredentialsGrant(config, { resource: discovery.audience });
    accessTokens.set(cacheKey, tokens.access_token);
    return tokens.access_token;
  } catch (err) {
    throw idpRefusal(err, `the IdP refused client ${clientId}`);
  }
}

async function loginToken(target: GatewayTarget, cacheKey: string): Promise<string> {
  const stored = loadLogin(target);
  if (!stored) throw new CliError('not logged in: run hoopctl login', ExitCode.notAuthenticated);
  const { login, store } = stored;
  // The file keeps the access token next to the refresh token; the keychain store keeps it in memory.
  const current = store === 'file' ? login.accessToken : accessTokens.get(cacheKey);
  if (current && isFresh(current)) return current;
  if (!login.refreshToken) {
    throw new CliError('your session has ended: run hoopctl login', ExitCode.notAuthenticated);
  }

  const config = await issuerConfiguration(target, login.issuer, login.clientId, oidc.None());
  let tokens: oidc.TokenEndpointResponse;
  try {
    tokens = await oidc.refreshTokenGrant(config, login.refreshToken, { resource: login.audience });
  } catch (err) {
    if (err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant') {
      // The IdP ended the session (revoked, expired, user disabled): the refresh token is worthless now.
      clearStoredLogin(target);
    }
    throw idpRefusal(err, 'your session could not be renewed');
  }
  const renewed: StoredLogin = {
    ...login,
    refreshToken: tokens.refresh_token ?? login.refreshToken,
    accessToken: tokens.access_token,
  };
  if (renewed.refreshToken !== login.refreshToken || store === 'file') writeLogin(target, renewed, store);
  if (store === 'keychain') accessTokens.set(cacheKey, tokens.access_token);
  return tokens.access_token;
}

function idpRefusal(err: unknown, what: string): CliError {
  if (err instanceof CliError) return err;
  const reason = oauthErrorReason(err);
  if (reason) return new CliError(`${what} (${reason}): run hoopctl login`, ExitCode.notAuthenticated);
  return new CliError(`${what}: ${(err as Error)?.message ?? String(err)}`);
}

/** The OAuth error an IdP answered with (`invalid_grant: ...`), from a body or a WWW-Authenticate challenge. */
export function oauthErrorReason(err: unknown): string | undefined {
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

/** GET /.well-known/hoop-gateway: where this gateway wants us to authenticate. */
export function gatewayDiscovery(target: GatewayTarget): Promise<GatewayDiscovery> {
  let pending = discoveries.get(target.url);
  if (!pending) {
    pending = apiRequest<GatewayDiscovery>(target, 'GET', DISCOVERY_PATH);
    pending.catch(() => discoveries.delete(target.url));
    discoveries.set(target.url, pending);
  }
  return pending;
}

/**
 * openid-client's view of the issuer. The gateway's CA file (HOOPCTL_CA_FILE) is trusted for the issuer
 * too, since private deployments tend to put both behind one CA. Plain http is allowed only on loopback.
 */
export async function issuerConfiguration(
  target: GatewayTarget,
  issuer: string,
  clientId: string,
  auth: oidc.ClientAuth,
): Promise<oidc.Configuration> {
  const url = new URL(issuer);
  const fetcher = fetchTrustingCa(target.caFile) as oidc.CustomFetch;
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
// Storage: the OS keychain, or a 0600 file where no keychain is usable.

type StoreKind = 'keychain' | 'file';

/** HOOPCTL_TOKEN_STORE=keychain|file forces one; otherwise the keychain, falling back to the file. */
function forcedStore(): StoreKind | undefined {
  const value = process.env.HOOPCTL_TOKEN_STORE?.trim().toLowerCase();
  if (!value) return undefined;
  if (value === 'keychain' || value === 'file') return value;
  throw new CliError(`HOOPCTL_TOKEN_STORE must be keychain or file, not "${value}"`, ExitCode.usage);
}

/** Save what `hoopctl login` obtained; returns where it went. */
export function saveLogin(target: GatewayTarget, login: StoredLogin): StoreKind {
  const forced = forcedStore();
  accessTokens.delete(`login ${target.url}`);
  if (login.accessToken) accessTokens.set(`login ${target.url}`, login.accessToken);
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
    warnFileFallback(String((err as { cause?: unknown }).cause ?? (err as Error).message));
    writeLogin(target, login, 'file');
    return 'file';
  }
}

/** Forget the login for this gateway (keychain, file and memory); returns what was stored, if anything. */
export function clearTokens(target: GatewayTarget): StoredLogin | undefined {
  const stored = loadLogin(target)?.login;
  clearStoredLogin(target);
  return stored;
}

function clearStoredLogin(target: GatewayTarget): void {
  accessTokens.delete(`login ${target.url}`);
  if (forcedStore() !== 'file') {
    try {
      keychainEntry(target).deletePassword();
    } catch {
      // No keychain, or nothing in it: nothing to forget there.
    }
  }
  removeFromFile(target);
}

function loadLogin(target: GatewayTarget): { login: StoredLogin; store: StoreKind } | undefined {
  const forced = forcedStore();
  if (forced !== 'file') {
    try {
      const value = keychainEntry(target).getPassword();
      if (value) return { login: JSON.parse(value) as StoredLogin, store: 'keychain' };
    } catch (err) {
      if (forced === 'keychain') throw keychainUnusable(err);
    }
    if (forced === 'keychain') return undefined;
  }
  const login = readTokenFile().gateways[target.url];
  return login ? { login, store: 'file' } : undefined;
}

function writeLogin(target: GatewayTarget, login: StoredLogin, store: StoreKind): void {
  if (store === 'keychain') {
    // Access tokens are short-lived and re-derivable: only the refresh token goes to the keychain.
    const { accessToken: _memoryOnly, ...durable } = login;
    try {
      keychainEntry(target).setPassword(JSON.stringify(durable));
    } catch (err) {
      throw keychainUnusable(err);
    }
    return;
  }
  const file = readTokenFile();
  file.gateways[target.url] = login;
  writeTokenFile(file);
}

/**
 * On Linux only the Secret Service (gnome-keyring, KWallet, KeePassXC) counts as a keychain: without it
 * @napi-rs/keyring would fall back to the kernel keyring, which is memory-only and loses the login at
 * every reboot. Requiring it makes the constructor throw there, and we fall back to the file.
 */
function keychainEntry(target: GatewayTarget): Entry {
  return new Entry(KEYCHAIN_SERVICE, target.url, { linux: { store: 'secret-service' } });
}

function keychainUnusable(err: unknown): CliError {
  const error = new CliError(
    `the OS keychain is not usable here (${(err as Error).message}); set HOOPCTL_TOKEN_STORE=file`,
  );
  error.cause = (err as Error).message;
  return error;
}

let warnedFileFallback = false;
function warnFileFallback(why: string): void {
  if (warnedFileFallback) return;
  warnedFileFallback = true;
  const reason = why
    .split('\n')[0]!
    .replace(/\s*\(.*$/, '')
    .slice(0, 80);
  warn(
    `no OS keychain (${reason}): refresh token kept in ${tokenFilePath()} (mode 0600); HOOPCTL_TOKEN_STORE=file silences this`,
  );
}

interface TokenFile {
  version: 1;
  gateways: Record<string, StoredLogin>;
}

function tokenFilePath(): string {
  return join(homeDir(), TOKEN_FILE);
}

function readTokenFile(): TokenFile {
  const path = tokenFilePath();
  if (!existsSync(path)) return { version: 1, gateways: {} };
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<TokenFile>;
    return { version: 1, gateways: parsed.gateways ?? {} };
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message} (delete it and run hoopctl login)`);
  }
}

/** Written to a temporary file with mode 0600, then renamed: never world-readable, never half-written. */
function writeTokenFile(file: TokenFile): void {
  const path = tokenFilePath();
  mkdirSync(homeDir(), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

function removeFromFile(target: GatewayTarget): void {
  const path = tokenFilePath();
  if (!existsSync(path)) return;
  const file = readTokenFile();
  if (!(target.url in file.gateways)) return;
  delete file.gateways[target.url];
  if (Object.keys(file.gateways).length === 0) rmSync(path, { force: true });
  else writeTokenFile(file);
}
