/**
 * Identity for tests, with no back doors:
 *   - startTestIdp: the real dev OIDC provider on a free port;
 *   - completeDeviceLogin: a person's browser, scripted — it drives the provider's own verification,
 *     login and consent pages over HTTP with a cookie jar;
 *   - deviceFlowTokens / clientCredentialsTokens: what a client (hoopctl) does, through openid-client;
 *   - startWorkloadIssuer: a second issuer (discovery + JWKS over HTTP) that mints CI-shaped ID tokens.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { type DevIdp, type DevIdpOptions, startDevIdp } from '../../gateway/dev/idp.js';
import { freePort } from './ports.js';

export { DEV_CLI_CLIENT_ID, DEV_CLIENTS, DEV_USERS } from '../../gateway/dev/idp.js';

/** The dev IdP on a free loopback port, polling interval 1 s so device logins finish quickly. */
export async function startTestIdp(options: Partial<DevIdpOptions> & { audience: string }): Promise<DevIdp> {
  return startDevIdp({ devicePollInterval: 1, ...options, port: options.port ?? (await freePort()) });
}

/**
 * Complete a device login the way a person would in a browser: open the verification page, enter the
 * user code, confirm it, sign in with username and password, allow access. Returns the final page's HTML.
 * Throws with the page's message when a step is refused (wrong code, wrong password).
 */
export async function completeDeviceLogin(
  verificationUri: string,
  userCode: string,
  username: string,
  password: string,
): Promise<string> {
  const browser = new Browser();
  let page = await browser.get(verificationUri);
  page = await browser.submit(page, (f) => f.fields.has('user_code'), { user_code: userCode });
  expectStep(page, (f) => f.fields.get('confirm') === 'yes', 'the user code was not accepted');
  page = await browser.submit(page, (f) => f.fields.get('confirm') === 'yes');
  expectStep(page, (f) => f.action.endsWith('/login'), 'no login page after confirming the code');
  page = await browser.submit(page, (f) => f.action.endsWith('/login'), { username, password });
  if (page.status === 401) throw new Error(`login refused for ${username}: ${textOf(page.html)}`);
  expectStep(page, (f) => f.action.endsWith('/confirm'), 'no consent page after login');
  page = await browser.submit(page, (f) => f.action.endsWith('/confirm'));
  if (page.status !== 200 || !/signed in/i.test(page.html)) {
    throw new Error(`device login did not finish (HTTP ${page.status}): ${textOf(page.html)}`);
  }
  return page.html;
}

export interface DeviceFlowOptions {
  /** Defaults to the dev IdP's public client. */
  clientId?: string;
  scope?: string;
}

/**
 * The whole device flow from the client's side (as hoopctl does it), with the browser part done by
 * completeDeviceLogin. Returns the token endpoint response (access_token, refresh_token, id_token...).
 */
export async function deviceFlowTokens(
  idp: Pick<DevIdp, 'issuer' | 'cliClientId'>,
  audience: string,
  username: string,
  password: string,
  options: DeviceFlowOptions = {},
): Promise<oidc.TokenEndpointResponse> {
  const config = await discover(idp.issuer, options.clientId ?? idp.cliClientId, oidc.None());
  const scope = options.scope ?? 'openid email profile offline_access';
  const authorization = await oidc.initiateDeviceAuthorization(config, { scope, resource: audience });
  const [, tokens] = await Promise.all([
    completeDeviceLogin(authorization.verification_uri, authorization.user_code, username, password),
    oidc.pollDeviceAuthorizationGrant(config, authorization, { resource: audience }),
  ]);
  return tokens;
}

/** A service account's token (client credentials grant) for the audience. */
export async function clientCredentialsTokens(
  issuer: string,
  audience: string,
  clientId: string,
  secret: string,
): Promise<oidc.TokenEndpointResponse> {
  const config = await discover(issuer, clientId, oidc.ClientSecretBasic(secret));
  return oidc.clientCredentialsGrant(config, { resource: audience });
}

function discover(issuer: string, clientId: string, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, undefined, auth, {
    execute: [oidc.allowInsecureRequests],
  });
}

// ---------------------------------------------------------------------------------------------
// A scripted browser: cookies, redirects, forms.

interface Page {
  url: string;
  status: number;
  html: string;
}

interface Form {
  action: string;
  method: string;
  fields: Map<string, string>;
}

class Browser {
  private readonly cookies = new Map<string, string>();

  get(url: string): Promise<Page> {
    return this.request(url, 'GET');
  }

  async submit(
    page: Page,
    pick: (form: Form) => boolean,
    values: Record<string, string> = {},
  ): Promise<Page> {
    const form = formsOf(page.html).find(pick);
    if (!form) throw new Error(`no matching form on ${page.url}: ${textOf(page.html)}`);
    const body = new URLSearchParams([...new Map([...form.fields, ...Object.entries(values)])]);
    return this.request(new URL(form.action, page.url).href, form.method, body);
  }

  /** Send, then follow redirects (303/302 become GET) carrying cookies, like a browser. */
  private async request(url: string, method: string, body?: URLSearchParams): Promise<Page> {
    let current = url;
    let currentMethod = method;
    let currentBody = body;
    for (let hop = 0; hop < 20; hop++) {
      const headers: Record<string, string> = { accept: 'text/html' };
      const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (cookie) headers.cookie = cookie;
      if (currentBody) headers['content-type'] = 'application/x-www-form-urlencoded';
      const response = await fetch(current, {
        method: currentMethod,
        headers,
        body: currentBody?.toString(),
        redirect: 'manual',
      });
      for (const line of response.headers.getSetCookie()) this.remember(line);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        current = new URL(location, current).href;
        currentMethod = 'GET';
        currentBody = undefined;
        continue;
      }
      return { url: current, status: response.status, html: await response.text() };
    }
    throw new Error(`too many redirects from ${url}`);
  }

  private remember(setCookie: string): void {
    const [pair = '', ...attributes] = setCookie.split(';');
    const eq = pair.indexOf('=');
    if (eq < 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some(
      (a) => /^\s*max-age=0\s*$/i.test(a) || /expires=thu, 01 jan 1970/i.test(a),
    );
    if (expired || value === '') this.cookies.delete(name);
    else this.cookies.set(name, value);
  }
}

function formsOf(html: string): Form[] {
  const forms: Form[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = match[1] ?? '';
    const fields = new Map<string, string>();
    for (const input of (match[2] ?? '').matchAll(/<input\b([^>]*)>/gi)) {
      const name = attributeOf(input[1] ?? '', 'name');
      if (name) fields.set(name, decodeEntities(attributeOf(input[1] ?? '', 'value') ?? ''));
    }
    forms.push({
      action: decodeEntities(attributeOf(attributes, 'action') ?? ''),
      method: (attributeOf(attributes, 'method') ?? 'GET').toUpperCase(),
      fields,
    });
  }
  return forms;
}

function attributeOf(attributes: string, name: string): string | undefined {
  const match = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(attributes);
  return match ? (match[2] ?? match[3]) : undefined;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function expectStep(page: Page, pick: (form: Form) => boolean, what: string): void {
  if (!formsOf(page.html).some(pick))
    throw new Error(`${what} (HTTP ${page.status} at ${page.url}): ${textOf(page.html)}`);
}

function textOf(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

// ---------------------------------------------------------------------------------------------
// A workload (CI) issuer: discovery + JWKS over HTTP for ES256 keys the test holds.

export interface WorkloadIssuer {
  issuer: string;
  /** How many times the JWKS was fetched (to check the verifier's refetch rate limit). */
  readonly jwksRequests: number;
  /** The kid tokens are signed with by default. */
  readonly currentKid: string;
  /** A new signing key, published in the JWKS from now on; returns its kid. */
  rotateKey(): Promise<string>;
  /** A key the JWKS does not publish (for "unknown kid" tests). */
  unpublishedKey(): Promise<{ kid: string; privateKey: CryptoKey }>;
  privateKey(kid?: string): CryptoKey;
  stop(): Promise<void>;
}

export interface WorkloadTokenOptions {
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  kid?: string;
  /** Sign with this key instead of a published one. */
  privateKey?: CryptoKey;
}

export async function startWorkloadIssuer(): Promise<WorkloadIssuer> {
  const keys = new Map<string, { privateKey: CryptoKey; publicJwk: JWK }>();
  const newKey = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const kid = randomUUID();
    return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
  };
  const first = await newKey();
  keys.set(first.kid, first);
  let currentKid = first.kid;
  let jwksRequests = 0;

  const server: Server = createServer((req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/.well-known/openid-configuration') {
      json({
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks`,
        id_token_signing_alg_values_supported: ['ES256'],
      });
    } else if (req.url === '/.well-known/jwks') {
      jwksRequests++;
      json({ keys: [...keys.values()].map((k) => k.publicJwk) });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    issuer,
    get jwksRequests() {
      return jwksRequests;
    },
    get currentKid() {
      return currentKid;
    },
    async rotateKey() {
      const key = await newKey();
      keys.set(key.kid, key);
      currentKid = key.kid;
      return key.kid;
    },
    async unpublishedKey() {
      const { kid, privateKey } = await newKey();
      return { kid, privateKey };
    },
    privateKey(kid = currentKid) {
      const key = keys.get(kid);
      if (!key) throw new Error(`no key ${kid}`);
      return key.privateKey;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A GitHub-Actions-shaped ID token from the workload issuer; claims override the defaults. */
export async function mintWorkloadToken(
  issuer: WorkloadIssuer,
  audience: string,
  claims: JWTPayload = {},
  options: WorkloadTokenOptions = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const repository = typeof claims.repository === 'string' ? claims.repository : 'acme/app';
  const ref = typeof claims.ref === 'string' ? claims.ref : 'refs/heads/main';
  const payload: JWTPayload = {
    iss: issuer.issuer,
    aud: audience,
    sub: `repo:${repository}:ref:${ref}`,
    repository,
    repository_owner: repository.split('/')[0],
    ref,
    ref_type: 'branch',
    sha: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
    workflow: 'deploy',
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    event_name: 'push',
    actor: 'octocat',
    run_id: '4242',
    runner_environment: 'github-hosted',
    jti: randomUUID(),
    iat: now,
    nbf: now - 5,
    exp: now + (options.expiresIn ?? 300),
    ...claims,
  };
  const kid = options.kid ?? issuer.currentKid;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
    .sign(options.privateKey ?? issuer.privateKey(kid));
}
