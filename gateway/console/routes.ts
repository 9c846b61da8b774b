/**
 * /console: the web console's pages and sign-in, on the gateway's main listener.
 *   GET  /console/, /console/<page>[/<id>]   the single-page app (index.html; the app routes itself)
 *   GET  /console/assets/<file>              built scripts and styles (content-hashed, cached for good)
 *   GET  /console/login?return=/console/…    starts the sign-in (authorization code + PKCE)
 *   GET  /console/callback                   the identity provider returns here
 *   GET  /console/session[?error=KEY]        the CSRF token and the sign-in's end (401 when signed out,
 *                                            with why the last sign-in failed when given its key)
 *   POST /console/logout                     ends the sign-in (CSRF-checked)
 * Every answer carries a strict Content-Security-Policy. The app reads and changes data only through
 * the /v1 API, with its session cookie standing in for a bearer token (transport/http.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { RawResponse } from '../transport/http.js';
import type { Route, RouteContext } from '../transport/router.js';
import { type Asset, loadAssets } from './assets.js';
import { securityHeaders } from './headers.js';
import { createOidcLogin } from './oidc.js';
import { ConsoleSessions } from './sessions.js';
import { createSignIn, type Redirect, type SignInDeps } from './signin.js';

export interface ConsoleDeps extends Omit<SignInDeps, 'sessions' | 'login' | 'config'> {
  config: Pick<GatewayConfig, 'listen' | 'console' | 'identity'>;
  /** Where the built console is (default: dist/console beside the compiled gateway). */
  assetsDir?: string;
}

/** dist/gateway/console/routes.js → dist/console */
const builtConsole = () => join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console');

const json = (
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): RawResponse => ({
  raw: true,
  status,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
  headers,
});

const NOT_BUILT = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hoop console</title></head>
<body><h1>The console is not built</h1><p>Run <code>npm run build</code> and restart the gateway.</p></body></html>`;

export function createConsole(deps: ConsoleDeps) {
  const { config } = deps;
  const tls = Boolean(config.listen.tls);
  const headers = securityHeaders(tls);
  const sessions = new ConsoleSessions({
    lifetimeMs: config.console.session_lifetime,
    idleMs: config.console.idle_timeout,
  });
  const signIn = createSignIn({ ...deps, sessions, login: createOidcLogin(config.identity.issuers) });
  const loaded = loadAssets(deps.assetsDir ?? builtConsole());
  // A source tree without a build has index.html but no assets/: treat it as not built.
  const assets = [...loaded.keys()].some((k) => k.startsWith('assets/')) ? loaded : new Map<string, Asset>();

  const serve = (name: string, ctx: RouteContext): RawResponse => {
    const asset = assets.get(name);
    if (!asset) {
      if (name !== 'index.html')
        return json(404, { error: { code: 'not_found', message: `no file ${name}` } });
      return { raw: true, status: 503, contentType: 'text/html; charset=utf-8', body: NOT_BUILT, headers };
    }
    const cache = asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache';
    const common = { ...headers, 'cache-control': cache, etag: asset.etag, vary: 'accept-encoding' };
    if (ctx.headers['if-none-match'] === asset.etag) {
      return { raw: true, status: 304, contentType: asset.contentType, body: '', headers: common };
    }
    const gzip = asset.gzip && /\bgzip\b/.test(String(ctx.headers['accept-encoding'] ?? ''));
    return {
      raw: true,
      contentType: asset.contentType,
      body: gzip ? asset.gzip! : asset.body,
      headers: gzip ? { ...common, 'content-encoding': 'gzip' } : common,
    };
  };
  const redirect = (r: Redirect): RawResponse => ({
    raw: true,
    status: 302,
    contentType: 'text/plain; charset=utf-8',
    body: '',
    headers: { ...headers, location: r.location, ...(r.cookies.length ? { 'set-cookie': r.cookies } : {}) },
  });
  const page: Route['handler'] = async (ctx) => {
    const name = ctx.params.page;
    // Top-level files (an icon, robots.txt) are served as they are; every other path is a page of the app.
    return serve(name && assets.has(name) ? name : 'index.html', ctx);
  };

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/console/assets/:file',
      access: 'public',
      handler: async (ctx) => serve(`assets/${ctx.params.file}`, ctx),
    },
    {
      method: 'GET',
      path: '/console/login',
      access: 'public',
      handler: async ({ headers: h, query, source }) =>
        redirect(await signIn.begin(h, query.get('return'), source)),
    },
    {
      method: 'GET',
      path: '/console/callback',
      access: 'public',
      handler: async ({ headers: h, query, source }) => redirect(await signIn.finish(h, query, source)),
    },
    {
      method: 'GET',
      path: '/console/session',
      access: 'public',
      handler: async ({ headers: h, query }) => {
        let session: ReturnType<typeof signIn.sessionOf>;
        try {
          session = signIn.sessionOf(h);
        } catch {
          session = undefined; // ended: the page shows the sign-in
        }
        if (!session) {
          const failure = signIn.failure(query.get('error'));
          return json(401, {
            error: { code: 'unauthenticated', message: 'not signed in' },
            sign_in: signInAvailable(config),
            ...(failure ? { sign_in_error: failure } : {}),
          });
        }
        return json(200, {
          csrf: session.csrf,
          subject: session.subject,
          ends_at: new Date(session.endsAt).toISOString(),
          idle_timeout_ms: config.console.idle_timeout,
        });
      },
    },
    {
      method: 'POST',
      path: '/console/logout',
      access: 'public',
      handler: async ({ headers: h }) => json(200, { signed_out: true }, { 'set-cookie': signIn.signOut(h) }),
    },
    { method: 'GET', path: '/console', access: 'public', handler: page },
    { method: 'GET', path: '/console/', access: 'public', handler: page },
    { method: 'GET', path: '/console/:page', access: 'public', handler: page },
    { method: 'GET', path: '/console/:page/:id', access: 'public', handler: page },
  ];
  return { routes, sessionToken: signIn.sessionToken, sessions };
}

function signInAvailable(config: Pick<GatewayConfig, 'identity'>): boolean {
  return config.identity.issuers.some((i) => i.kind === 'oidc' && i.console_client_id);
}
