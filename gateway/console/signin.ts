/**
 * Signing in to the console and using its session: the authorization code + PKCE round trip, the
 * session cookie, CSRF checks on state changes, and renewing the access token before it expires.
 * Who may do what is never decided here: the API checks the identity the token stands for, as it
 * does for a bearer token.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import { sourceKeyOfEndpoint } from '../transport/places-by-source.js';
import { HttpError } from '../transport/router.js';
import { cookieNames, readCookie, setCookie } from './cookies.js';
import type { OidcLogin } from './oidc.js';
import { type ConsoleSession, type ConsoleSessions, randomToken, sameSecret } from './sessions.js';

export interface SignInDeps {
  config: Pick<GatewayConfig, 'listen' | 'console'>;
  sessions: ConsoleSessions;
  login: OidcLogin;
  authenticate(token: string, source: string): Promise<Identity>;
  record(input: AuditRecordInput): Promise<unknown>;
}

/** A redirect and the cookies that go with it. */
export interface Redirect {
  location: string;
  cookies: string[];
}

const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/** Where the person lands after signing in: a console path only (never another site, never `//host`). */
export function safeReturnPath(text: string | null | undefined): string {
  if (!text || !/^\/console(\/[A-Za-z0-9/_.~%-]*)?(\?[A-Za-z0-9=&_.~%+-]*)?$/.test(text)) return '/console/';
  if (text.includes('//') || text.includes('/..')) return '/console/';
  return text;
}

export function createSignIn(deps: SignInDeps) {
  const { config, sessions, login } = deps;
  /**
   * Why a sign-in failed, shown on the sign-in page. The address carries only a random key
   * (`?error=<key>`): nobody can link to the console with a message of their own making.
   */
  const failures = new Map<string, { message: string; at: number }>();
  const errorRedirect = (message: string, cookies: string[] = []): Redirect => {
    const now = Date.now();
    for (const [key, f] of failures) if (now - f.at > 300_000 || failures.size > 500) failures.delete(key);
    const key = randomToken().slice(0, 22);
    failures.set(key, { message: message.replace(/\s+/g, ' ').slice(0, 300), at: now });
    return { location: `/console/?error=${key}`, cookies };
  };
  const secure = Boolean(config.listen.tls);
  const names = cookieNames(secure);
  const renewing = new Map<ConsoleSession, Promise<void>>();

  /** The gateway's own origin as this request reached it (public_url wins when configured). */
  const originOf = (headers: IncomingHttpHeaders): string => {
    if (config.listen.public_url) return new URL(config.listen.public_url).origin;
    const host = headers.host ?? '';
    if (!HOST.test(host)) throw new HttpError(400, 'bad_request', 'the Host header is not a host name');
    return `${secure ? 'https' : 'http'}://${host}`;
  };
  const sessionCookie = (value: string, maxAge?: number) =>
    setCookie(names.session, value, { path: '/', sameSite: 'Strict', secure, maxAge });
  const loginCookie = (value: string, maxAge: number) =>
    setCookie(names.login, value, { path: '/', sameSite: 'Lax', secure, maxAge });

  /** `source`: the caller's ip:port (transport/http.ts sourceOf). */
  async function begin(
    headers: IncomingHttpHeaders,
    returnTo: string | null,
    source = 'unknown',
  ): Promise<Redirect> {
    if (login.issuer === undefined) {
      return errorRedirect(
        'The console is not set up on this gateway: give an issuer console_client_id (see docs/console.md).',
      );
    }
    const redirectUri = `${originOf(headers)}/console/callback`;
    const verifier = randomToken();
    const nonce = randomToken();
    const state = sessions.begin({
      source: sourceKeyOfEndpoint(source),
      issuer: login.issuer,
      verifier,
      nonce,
      redirectUri,
      returnTo: safeReturnPath(returnTo),
    });
    try {
      const url = await login.authorizationUrl({ redirectUri, state, verifier, nonce });
      return { location: url.href, cookies: [loginCookie(state, 600)] };
    } catch (err) {
      return errorRedirect((err as Error).message);
    }
  }

  async function finish(
    headers: IncomingHttpHeaders,
    query: URLSearchParams,
    source: string,
  ): Promise<Redirect> {
    const clear = [loginCookie('', 0)];
    const state = query.get('state') ?? '';
    const cookie = readCookie(headers.cookie, names.login);
    // The state must come back to the browser that started the sign-in (no login CSRF, no fixation).
    const pending = cookie && state && sameSecret(cookie, state) ? sessions.take(state) : undefined;
    if (!pending)
      return errorRedirect('This sign-in expired or was started elsewhere. Sign in again.', clear);
    if (query.get('error')) {
      return errorRedirect(
        `The identity provider did not sign you in: ${query.get('error_description') ?? query.get('error')}`,
        clear,
      );
    }
    let identity: Identity;
    let tokens: Awaited<ReturnType<OidcLogin['exchange']>>;
    try {
      tokens = await login.exchange(new URL(`/console/callback?${query}`, pending.redirectUri), {
        state,
        verifier: pending.verifier,
        nonce: pending.nonce,
        redirectUri: pending.redirectUri,
      });
    } catch (err) {
      return errorRedirect(`Signing in failed at the identity provider: ${(err as Error).message}`, clear);
    }
    try {
      identity = await deps.authenticate(tokens.accessToken, source);
    } catch (err) {
      return errorRedirect(`The gateway does not accept this sign-in: ${(err as Error).message}`, clear);
    }
    const { id } = sessions.create({
      issuer: pending.issuer,
      subject: identity.subject,
      accessToken: tokens.accessToken,
      accessExpiresAt: tokens.expiresAt,
      ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken } : {}),
    });
    await deps.record({ type: 'auth.succeeded', identity, source, data: { client: 'console' } });
    const maxAge = config.console.session_lifetime / 1000;
    return { location: pending.returnTo, cookies: [...clear, sessionCookie(id, maxAge)] };
  }

  /** The session of this request's cookie; undefined without a cookie; 401 when it has ended. */
  function sessionOf(headers: IncomingHttpHeaders): ConsoleSession | undefined {
    const id = readCookie(headers.cookie, names.session);
    if (!id) return undefined;
    const session = sessions.get(id);
    if (!session)
      throw new HttpError(401, 'unauthenticated', 'your console sign-in has ended: sign in again');
    return session;
  }

  /** A state change with the session cookie must come from the console's own page: same origin, CSRF token. */
  function checkCsrf(headers: IncomingHttpHeaders, session: ConsoleSession): void {
    const origin = headers.origin;
    if (origin !== undefined && origin !== originOf(headers)) {
      throw new HttpError(403, 'forbidden', `cross-site request refused (Origin ${origin.slice(0, 100)})`);
    }
    const token = headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameSecret(token, session.csrf)) {
      throw new HttpError(403, 'forbidden', 'missing or wrong CSRF token (x-csrf-token): reload the console');
    }
  }

  /** Renew the access token shortly before it expires (once, however many requests ask at that moment). */
  async function fresh(session: ConsoleSession, headers: IncomingHttpHeaders): Promise<void> {
    if (session.accessExpiresAt - Date.now() > 30_000) return;
    let pending = renewing.get(session);
    if (!pending) {
      pending = (async () => {
        if (!session.refreshToken) throw new Error('no refresh token');
        const tokens = await login.refresh(session.refreshToken);
        session.accessToken = tokens.accessToken;
        session.accessExpiresAt = tokens.expiresAt;
        if (tokens.refreshToken) session.refreshToken = tokens.refreshToken;
      })().finally(() => renewing.delete(session));
      renewing.set(session, pending);
    }
    try {
      await pending;
    } catch {
      sessions.delete(readCookie(headers.cookie, names.session));
      throw new HttpError(401, 'unauthenticated', 'your console sign-in could not be renewed: sign in again');
    }
  }

  return {
    names,
    /** The message of a failed sign-in, by the key in `?error=` (once). */
    failure(key: string | null): string | undefined {
      if (!key) return undefined;
      const found = failures.get(key);
      failures.delete(key);
      return found?.message;
    },
    begin,
    finish,
    sessionOf,
    checkCsrf,
    /** For the API (transport/http.ts): the cookie's current access token, CSRF-checked on state changes. */
    async sessionToken(request: IncomingMessage, stateChanging: boolean): Promise<string | undefined> {
      const session = sessionOf(request.headers);
      if (!session) return undefined;
      if (stateChanging) checkCsrf(request.headers, session);
      await fresh(session, request.headers);
      return session.accessToken;
    },
    signOut(headers: IncomingHttpHeaders): string {
      const session = sessionOf(headers);
      if (session) checkCsrf(headers, session);
      sessions.delete(readCookie(headers.cookie, names.session));
      return sessionCookie('', 0);
    },
  };
}

export type SignIn = ReturnType<typeof createSignIn>;
