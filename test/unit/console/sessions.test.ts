/** The console's server-side sessions, cookies and the return path after signing in (pure logic). */
import { describe, expect, it } from 'vitest';
import { cookieNames, readCookie, setCookie } from '../../../gateway/console/cookies.js';
import { ConsoleSessions, sameSecret } from '../../../gateway/console/sessions.js';
import { safeReturnPath } from '../../../gateway/console/signin.js';

const session = { issuer: 0, subject: 'rita@example.com', accessToken: 't', accessExpiresAt: 0 };

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('ConsoleSessions', () => {
  it('finds a session by its cookie value only, and ends it when idle', () => {
    const time = clock();
    const sessions = new ConsoleSessions({ lifetimeMs: 3_600_000, idleMs: 600_000 }, time.now);
    const { id, session: s } = sessions.create(session);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.csrf).not.toBe(id);
    expect(sessions.get(id)?.subject).toBe('rita@example.com');
    expect(sessions.get(`${id}x`)).toBeUndefined();
    time.advance(599_000);
    expect(sessions.get(id)).toBeDefined(); // use keeps it alive
    time.advance(599_000);
    expect(sessions.get(id)).toBeDefined();
    time.advance(600_000);
    expect(sessions.get(id)).toBeUndefined();
  });

  it('ends a session at its absolute lifetime however active, and on delete', () => {
    const time = clock();
    const sessions = new ConsoleSessions({ lifetimeMs: 1_000_000, idleMs: 600_000 }, time.now);
    const { id } = sessions.create(session);
    for (let i = 0; i < 4; i++) {
      time.advance(240_000);
      expect(sessions.get(id)).toBeDefined();
    }
    time.advance(40_000);
    expect(sessions.get(id)).toBeUndefined();
    const other = sessions.create(session);
    sessions.delete(other.id);
    expect(sessions.get(other.id)).toBeUndefined();
  });

  it('keeps at most maxSessions, dropping the least recently used', () => {
    const sessions = new ConsoleSessions({ lifetimeMs: 1e9, idleMs: 1e9, maxSessions: 2 });
    const a = sessions.create(session);
    const b = sessions.create(session);
    sessions.get(a.id); // a is now the most recently used
    const c = sessions.create(session);
    expect(sessions.get(b.id)).toBeUndefined();
    expect(sessions.get(a.id)).toBeDefined();
    expect(sessions.get(c.id)).toBeDefined();
  });

  it('gives a pending sign-in back once, while fresh, and bounds how many wait', () => {
    const time = clock();
    const sessions = new ConsoleSessions(
      { lifetimeMs: 1e9, idleMs: 1e9, maxPending: 3, pendingMs: 60_000 },
      time.now,
    );
    const login = {
      source: '192.0.2.1',
      issuer: 0,
      verifier: 'v',
      nonce: 'n',
      redirectUri: 'https://gw/console/callback',
      returnTo: '/console/',
    };
    const state = sessions.begin(login);
    expect(sessions.take(state)?.verifier).toBe('v');
    expect(sessions.take(state)).toBeUndefined();
    const late = sessions.begin(login);
    time.advance(60_000);
    expect(sessions.take(late)).toBeUndefined();
    const states = Array.from({ length: 5 }, () => sessions.begin(login));
    expect(sessions.size.pending).toBeLessThanOrEqual(3);
    expect(sessions.take(states[0])).toBeUndefined();
    expect(sessions.take(states[4])).toBeDefined();
  });

  it('when full, a new sign-in pushes out the oldest of the source that started the most', () => {
    const sessions = new ConsoleSessions({ lifetimeMs: 1e9, idleMs: 1e9, maxPending: 4 }, clock().now);
    const login = (source: string) => ({
      source,
      issuer: 0,
      verifier: source,
      nonce: 'n',
      redirectUri: 'https://gw/console/callback',
      returnTo: '/console/',
    });
    const person = sessions.begin(login('192.0.2.1'));
    const flood = Array.from({ length: 50 }, () => sessions.begin(login('198.51.100.7')));
    expect(sessions.size.pending).toBe(4);
    const later = sessions.begin(login('203.0.113.9'));
    expect(sessions.take(person)?.verifier).toBe('192.0.2.1');
    expect(sessions.take(later)?.verifier).toBe('203.0.113.9');
    expect(flood.filter((s) => sessions.take(s)).length).toBe(2);
    // One source alone sees the plain cap: its own oldest go first.
    const alone = new ConsoleSessions({ lifetimeMs: 1e9, idleMs: 1e9, maxPending: 2 }, clock().now);
    const [a, b, c] = [1, 2, 3].map(() => alone.begin(login('192.0.2.1')));
    expect([alone.take(a), alone.take(b), alone.take(c)].map(Boolean)).toEqual([false, true, true]);
  });
});

describe('cookies', () => {
  it('reads one cookie by name and refuses values that are not tokens', () => {
    expect(readCookie('a=1; __Host-hoop-console=abc_DEF-9; b=2', '__Host-hoop-console')).toBe('abc_DEF-9');
    expect(readCookie('x=1', 'y')).toBeUndefined();
    expect(readCookie('s="quoted"', 's')).toBeUndefined();
    expect(readCookie('s=a; s=b', 's')).toBe('a');
    expect(readCookie(undefined, 's')).toBeUndefined();
  });

  it('writes HttpOnly cookies; Secure and __Host- names only with TLS', () => {
    expect(setCookie('n', 'v', { path: '/', sameSite: 'Strict', secure: true, maxAge: 60 })).toBe(
      'n=v; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=60',
    );
    expect(setCookie('n', '', { path: '/', sameSite: 'Lax', secure: false, maxAge: 0 })).toBe(
      'n=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0',
    );
    expect(cookieNames(true).session).toBe('__Host-hoop-console');
    expect(cookieNames(false).session).toBe('hoop-console');
  });

  it('compares secrets in constant time, and only equal ones match', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abd')).toBe(false);
    expect(sameSecret('abc', 'abcd')).toBe(false);
  });
});

describe('safeReturnPath', () => {
  it('lands only on console paths of this gateway', () => {
    expect(safeReturnPath('/console/sessions/abc')).toBe('/console/sessions/abc');
    expect(safeReturnPath('/console/sessions?identity=a%40b')).toBe('/console/sessions?identity=a%40b');
    for (const bad of [
      'https://evil.example/console/',
      '//evil.example/console',
      '/console//evil.example',
      '/console/../v1/whoami',
      '/v1/approvals',
      '/console\\@evil',
      'javascript:alert(1)',
      null,
      '',
    ])
      expect(safeReturnPath(bad)).toBe('/console/');
  });
});
