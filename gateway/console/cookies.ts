/** Cookie header parsing and Set-Cookie values for the console (pure). */

export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. Absent: a browser-session cookie. */
  maxAge?: number;
  path: string;
  /** Strict for the session; Lax only for the sign-in's state, which must survive the IdP's redirect back. */
  sameSite: 'Strict' | 'Lax';
  secure: boolean;
}

/** The value of cookie `name` in a Cookie header, or undefined. Later duplicates do not override the first. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{1,200}$/.test(value) ? value : undefined;
  }
  return undefined;
}

/** A Set-Cookie value; always HttpOnly (scripts never see the console's cookies). */
export function setCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path}`, 'HttpOnly', `SameSite=${options.sameSite}`];
  if (options.secure) parts.push('Secure');
  if (options.maxAge !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(options.maxAge))}`);
  return parts.join('; ');
}

/**
 * Cookie names: with TLS the `__Host-` prefix makes the browser insist on Secure, Path=/ and no Domain,
 * so no other host (a sibling subdomain) can plant or overwrite the session cookie.
 */
export function cookieNames(secure: boolean): { session: string; login: string } {
  return secure
    ? { session: '__Host-hoop-console', login: '__Host-hoop-console-login' }
    : { session: 'hoop-console', login: 'hoop-console-login' };
}
