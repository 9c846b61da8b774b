/**
 * The dev OIDC provider behind `hoop-gateway --dev` and the tests: a real oidc-provider with
 *   - the device authorization grant (RFC 8628) for the public client `hoopctl`, with refresh tokens,
 *   - client credentials for service accounts (confidential clients with secrets),
 *   - the authorization code grant with PKCE for the web console (public client `hoop-console`),
 *   - JWT access tokens whose `aud` is the gateway (RFC 8707 resource indicators), carrying
 *     email, name and groups,
 *   - plain HTML login and consent pages a person can click through (no external assets),
 *     with a real password check,
 *   - with a data directory: its keys, and its sessions, grants and refresh tokens (idp-store.ts), kept
 *     across restarts,
 *   - a headless path for shells with no browser: POST /dev/device-login with user_code, username and
 *     password completes a device login by driving the same pages (device-browser.ts). Only this dev
 *     IdP has it; a real IdP never does.
 * Plain HTTP on a loopback address: it is for trying hoopctl, not for production.
 */
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Provider, { type ClientMetadata, type Configuration, errors, type JWK } from 'oidc-provider';
import { completeDeviceLogin } from './device-browser.js';
import { fileAdapterFactory } from './idp-store.js';

export interface DevUser {
  /** Login name, also the subject (`sub`) and the email. */
  username: string;
  password: string;
  name: string;
  groups: string[];
}

export interface DevClient {
  clientId: string;
  secret: string;
  groups: string[];
  description?: string;
}

export interface DevIdpOptions {
  /** 0 or absent: any free port. */
  port?: number;
  host?: string;
  /** The gateway's audience: every access token is issued for it. */
  audience: string;
  /**
   * Where the signing key, the cookie keys and the provider's state (sessions, grants, refresh tokens)
   * persist across restarts (default: fresh ones each start, state in memory).
   */
  dataDir?: string;
  users?: DevUser[];
  clients?: DevClient[];
  /** Access token lifetime in seconds (default 600). */
  accessTokenTtl?: number;
  /** Seconds a device-flow client waits between polls, advertised as `interval` (default 5; tests use 1). */
  devicePollInterval?: number;
  /**
   * Where the web console's sign-in may return (default: `<audience>/console/callback`, and its
   * `localhost` / `127.0.0.1` twin when the audience is a loopback URL).
   */
  consoleRedirectUris?: string[];
}

export interface DevIdp {
  issuer: string;
  /** Public client id for `hoopctl login` (device flow). */
  cliClientId: string;
  stop(): Promise<void>;
}

/** The public client `hoopctl login` uses. */
export const DEV_CLI_CLIENT_ID = 'hoopctl';

/** The web console's public client (authorization code + PKCE). */
export const DEV_CONSOLE_CLIENT_ID = 'hoop-console';

/** The console's redirect URIs for a gateway at `audience`: both loopback spellings, so either works in a browser. */
export function consoleRedirectUris(audience: string): string[] {
  const url = new URL('/console/callback', audience);
  const uris = [url.href];
  const twin = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname === '127.0.0.1' ? 'localhost' : '';
  if (twin) {
    url.hostname = twin;
    uris.push(url.href);
  }
  return uris;
}

/** Demo people: an engineer, a reviewer and an auditor. Passwords are printed by the dev mode. */
export const DEV_USERS: readonly DevUser[] = [
  { username: 'alice@example.com', password: 'alice-dev', name: 'Alice Engineer', groups: ['engineering'] },
  { username: 'rita@example.com', password: 'rita-dev', name: 'Rita Reviewer', groups: ['db-reviewers'] },
  { username: 'aubrey@example.com', password: 'aubrey-dev', name: 'Aubrey Auditor', groups: ['audit'] },
];

/** Demo service accounts (client credentials). */
export const DEV_CLIENTS: readonly DevClient[] = [
  { clientId: 'ci-bot', secret: 'ci-bot-secret', groups: ['ci-deploy'], description: 'CI service account' },
  { clientId: 'agent-bot', secret: 'agent-bot-secret', groups: ['ai-agents'], description: 'AI agent (MCP)' },
];

/** Scopes a resource server (the gateway) grants; OIDC scopes are separate. */
const GATEWAY_SCOPE = 'gateway';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? '127.0.0.1';
  const users = options.users ?? DEV_USERS;
  const clients = options.clients ?? DEV_CLIENTS;
  const accessTokenTtl = options.accessTokenTtl ?? 600;

  // Listen first: the issuer URL carries the port, and the port may be chosen by the OS.
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  const keys = loadOrCreateKeys(options.dataDir);
  const provider = new Provider(
    issuer,
    providerConfiguration({ ...options, users, clients, accessTokenTtl }, keys),
  );
  advertisePollInterval(provider, options.devicePollInterval ?? 5);
  const providerCallback = provider.callback();
  const interactions = interactionRoutes(provider, users);
  handle = (req, res) => {
    if (req.url === HEADLESS_PATH) {
      headlessDeviceLogin(req, res, issuer);
      return;
    }
    if (req.url?.startsWith('/interaction/')) {
      interactions(req, res).catch((err: Error) =>
        sendHtml(res, 500, page('Error', `<p>${escapeHtml(err.message)}</p>`)),
      );
      return;
    }
    providerCallback(req, res);
  };

  return {
    issuer,
    cliClientId: DEV_CLI_CLIENT_ID,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** POST a form here (user_code, username, password) to finish a device login without a browser. */
export const HEADLESS_PATH = '/dev/device-login';

/**
 * The headless path: the provider's own device pages, driven by a scripted browser on behalf of a
 * caller who sent the user code and the password. Answers JSON: { ok: true } or 400 { error }.
 */
function headlessDeviceLogin(req: IncomingMessage, res: ServerResponse, issuer: string): void {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  if (req.method !== 'POST') {
    reply(405, { error: `POST user_code, username and password to ${HEADLESS_PATH}` });
    return;
  }
  readForm(req)
    .then(async (form) => {
      const [userCode, username, password] = ['user_code', 'username', 'password'].map(
        (k) => form.get(k) ?? '',
      );
      if (!userCode || !username || !password) {
        reply(400, { error: 'give user_code, username and password' });
        return;
      }
      await completeDeviceLogin(`${issuer}/device`, userCode, username, password);
      reply(200, { ok: true, username });
    })
    .catch((err: Error) => reply(400, { error: err.message }));
}

/** RFC 8628 `interval` in the device authorization response (oidc-provider leaves it out; clients then wait 5 s). */
function advertisePollInterval(provider: Provider, seconds: number): void {
  provider.use(async (ctx, next) => {
    await next();
    if (
      ctx.oidc?.route === 'device_authorization' &&
      ctx.status === 200 &&
      ctx.body &&
      typeof ctx.body === 'object'
    ) {
      (ctx.body as Record<string, unknown>).interval = seconds;
    }
  });
}

interface Keys {
  signing: JWK;
  cookies: string[];
}

/** An RS256 signing key (what OIDC clients expect by default) and cookie keys, kept in dataDir when given. */
function loadOrCreateKeys(dataDir: string | undefined): Keys {
  const file = dataDir ? join(dataDir, 'idp-keys.json') : undefined;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Keys;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  const keys: Keys = {
    signing: { ...jwk, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' },
    cookies: [randomBytes(32).toString('base64url')],
  };
  if (file && dataDir) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return keys;
}

type ResolvedOptions = Omit<DevIdpOptions, 'users' | 'clients'> & {
  users: readonly DevUser[];
  clients: readonly DevClient[];
  accessTokenTtl: number;
};

function providerConfiguration(options: ResolvedOptions, keys: Keys): Configuration {
  const { audience, users, clients, accessTokenTtl } = options;
  const userBySub = new Map(users.map((u) => [u.username, u]));
  const clientById = new Map(clients.map((c) => [c.clientId, c]));

  const cliClient: ClientMetadata = {
    client_id: DEV_CLI_CLIENT_ID,
    client_name: 'hoopctl',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  };
  const consoleClient: ClientMetadata = {
    client_id: DEV_CONSOLE_CLIENT_ID,
    client_name: 'hoop console',
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: options.consoleRedirectUris ?? consoleRedirectUris(audience),
  };
  const serviceClients: ClientMetadata[] = clients.map((c) => ({
    client_id: c.clientId,
    client_secret: c.secret,
    client_name: c.description ?? c.clientId,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }));

  return {
    ...(options.dataDir ? { adapter: fileAdapterFactory(join(options.dataDir, 'idp-state.json')) } : {}),
    clients: [cliClient, consoleClient, ...serviceClients],
    // Every authorization code request must carry a PKCE challenge (S256).
    pkce: { required: () => true },
    jwks: { keys: [keys.signing] },
    cookies: { keys: keys.cookies },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    async findAccount(_ctx, sub) {
      const user = userBySub.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          email: user.username,
          email_verified: true,
          name: user.name,
          groups: user.groups,
        }),
      };
    },
    // The gateway reads who someone is from the access token alone, so the token carries it.
    async extraTokenClaims(_ctx, token) {
      if ('accountId' in token && token.accountId) {
        const user = userBySub.get(token.accountId);
        return user ? { email: user.username, name: user.name, groups: user.groups } : undefined;
      }
      const client = token.clientId ? clientById.get(token.clientId) : undefined;
      return client ? { groups: client.groups } : undefined;
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // `hoopctl logout` revokes its own refresh token; nobody revokes another client's tokens.
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId,
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => {
          const message = err ? `<p class="error">${escapeHtml(userCodeProblem(err))}</p>` : '';
          ctx.body = page(
            'Sign in to hoopctl',
            `<p>Enter the code <code>hoopctl login</code> shows.</p>${message}${form}
             <button type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource: (ctx, form, client, _deviceInfo, userCode) => {
          ctx.body = page(
            'Confirm the code',
            `<p><strong>${escapeHtml(client.clientName ?? client.clientId)}</strong> asks to sign in.</p>
             <p>Check that your terminal shows <code>${escapeHtml(userCode)}</code>.</p>${form}
             <button type="submit" form="op.deviceConfirmForm">Yes, that is my code</button>`,
          );
        },
        successSource: (ctx) => {
          ctx.body = page(
            'Signed in',
            '<p>You are signed in. Return to your terminal; you can close this page.</p>',
          );
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        // Refresh and device-code exchanges keep the gateway audience without repeating `resource`.
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== audience) throw new errors.InvalidTarget(`unknown resource ${resource}`);
          return {
            scope: GATEWAY_SCOPE,
            audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // Refresh tokens for the device client even when offline_access was not asked for explicitly.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // No rotation: two hoopctl processes refreshing at once must not revoke each other's grant.
    rotateRefreshToken: false,
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      DeviceCode: 600,
      Interaction: 600,
      IdToken: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page(
        'Sign-in failed',
        `<p>${escapeHtml(String(out.error_description ?? out.error))}</p><p>Start again: <code>hoopctl login</code>, or Sign in on the console.</p>`,
      );
    },
  };
}

/** The login (username/password) and consent steps: GET shows a page, POSTs answer it. */
function interactionRoutes(provider: Provider, users: readonly DevUser[]) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [, , uid, action] = url.pathname.split('/');
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      sendHtml(
        res,
        400,
        page(
          'Sign-in expired',
          '<p>This sign-in is no longer valid. Start again: <code>hoopctl login</code>, or Sign in on the console.</p>',
        ),
      );
      return;
    }
    if (details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in mismatch', '<p>This page belongs to another sign-in.</p>'));
      return;
    }
    const base = `/interaction/${encodeURIComponent(details.uid)}`;

    if (req.method === 'GET' && !action) {
      if (details.prompt.name === 'login') sendHtml(res, 200, loginPage(base, users));
      else
        sendHtml(res, 200, consentPage(base, String(details.params.client_id), details.session?.accountId));
      return;
    }
    if (req.method !== 'POST') {
      sendHtml(res, 405, page('Not allowed', '<p>Use the form.</p>'));
      return;
    }
    const form = await readForm(req);

    if (action === 'login') {
      const user = users.find((u) => u.username === form.get('username')?.trim());
      if (!user || !samePassword(user.password, form.get('password') ?? '')) {
        sendHtml(res, 401, loginPage(base, users, 'Wrong username or password.'));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: user.username } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    if (action === 'confirm') {
      const accountId = details.session?.accountId;
      const clientId = String(details.params.client_id);
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId });
      if (!grant) throw new Error('grant not found');
      const missing = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    if (action === 'abort') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the sign-in was cancelled' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    sendHtml(res, 404, page('Not found', '<p>No such step.</p>'));
  };
}

function userCodeProblem(err: Error): string {
  switch (err.name) {
    case 'ExpiredError':
      return 'That code has expired: run hoopctl login again.';
    case 'AlreadyUsedError':
      return 'That code was already used.';
    case 'AbortedError':
      return 'The sign-in was cancelled.';
    case 'NoCodeError':
    case 'NotFoundError':
      return 'That code is not valid. Check it and try again.';
    default:
      return 'The code could not be checked. Try again.';
  }
}

function loginPage(base: string, users: readonly DevUser[], error?: string): string {
  const hint = users.map((u) => `<code>${escapeHtml(u.username)}</code>`).join(', ');
  return page(
    'Sign in',
    `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
     <form method="post" action="${base}/login">
       <label>Username <input type="text" name="username" autocomplete="username" autofocus required></label>
       <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
       <button type="submit">Sign in</button>
     </form>
     <form method="post" action="${base}/abort"><button type="submit" class="secondary">Cancel</button></form>
     <p class="hint">Dev identities: ${hint} (passwords are printed by <code>hoop-gateway --dev</code>).</p>`,
  );
}

function consentPage(base: string, clientId: string, accountId: string | undefined): string {
  return page(
    'Allow access',
    `<p>Signed in as <strong>${escapeHtml(accountId ?? 'unknown')}</strong>.</p>
     <p><strong>${escapeHtml(clientId)}</strong> will act as you at the hoop gateway.</p>
     <form method="post" action="${base}/confirm"><button type="submit">Allow</button></form>
     <form method="post" action="${base}/abort"><button type="submit" class="secondary">Cancel</button></form>`,
  );
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · hoop dev IdP</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.6rem 0}input{display:block;width:100%;padding:.4rem;box-sizing:border-box;font-size:1rem}
button{margin-top:.6rem;padding:.5rem 1rem;font-size:1rem}.secondary{background:none;border:none;color:#666;text-decoration:underline;cursor:pointer}
.error{color:#b00020}.hint{color:#666;font-size:.85rem}code{font-size:1.05em}
</style></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function samePassword(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
