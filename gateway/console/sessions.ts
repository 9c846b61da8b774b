/**
 * The console's server-side sessions: the browser holds only a random id in an HttpOnly cookie; the
 * tokens stay here, in memory. Sessions end at their absolute lifetime, when idle too long, or on sign-out.
 * Pending sign-ins (PKCE verifier, state, nonce) live here too, briefly and bounded in number.
 *
 * In memory per gateway process: a restart signs everyone out, and several replicas need the load
 * balancer to keep a browser on one replica (docs/console.md).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ConsoleSession {
  /** Index of the issuer in identity.issuers[]. */
  issuer: number;
  subject: string;
  accessToken: string;
  /** ms since the epoch. */
  accessExpiresAt: number;
  refreshToken?: string;
  /** Sent by the page in `x-csrf-token` on every state change. */
  csrf: string;
  createdAt: number;
  lastUsedAt: number;
  /** ms since the epoch: the absolute end. */
  endsAt: number;
}

export interface PendingLogin {
  /** Where the sign-in was started from (an IPv4 address or an IPv6 /64: transport/places-by-source.ts). */
  source: string;
  issuer: number;
  verifier: string;
  nonce: string;
  redirectUri: string;
  /** Console path to land on after signing in. */
  returnTo: string;
  createdAt: number;
}

export interface SessionLimits {
  lifetimeMs: number;
  idleMs: number;
  /** Most sessions kept at once; the least recently used goes first. Default 10,000. */
  maxSessions?: number;
  /**
   * Most sign-ins in flight; unauthenticated callers start these, so they are few and short, and when
   * they are full a new one pushes out the oldest of the source that started the most. Default 1,000.
   */
  maxPending?: number;
  /** How long a sign-in may take. Default 10 min. */
  pendingMs?: number;
}

export const randomToken = (): string => randomBytes(32).toString('base64url');

/** Sessions are keyed by a hash of the cookie value, so the table itself holds nothing a browser could present. */
const keyOf = (id: string) => createHash('sha256').update(id).digest('base64url');

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly pending = new Map<string, PendingLogin>();
  private lastSweep = 0;

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new session; returns the id to put in the cookie. */
  create(fields: Omit<ConsoleSession, 'csrf' | 'createdAt' | 'lastUsedAt' | 'endsAt'>): {
    id: string;
    session: ConsoleSession;
  } {
    this.sweep();
    const max = this.limits.maxSessions ?? 10_000;
    while (this.sessions.size >= max) this.sessions.delete(this.sessions.keys().next().value!);
    const now = this.now();
    const id = randomToken();
    const session: ConsoleSession = {
      ...fields,
      csrf: randomToken(),
      createdAt: now,
      lastUsedAt: now,
      endsAt: now + this.limits.lifetimeMs,
    };
    this.sessions.set(keyOf(id), session);
    return { id, session };
  }

  /** The live session of this cookie value (and marks it used), or undefined when unknown, idle or over. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const key = keyOf(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.now();
    if (now >= session.endsAt || now - session.lastUsedAt >= this.limits.idleMs) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastUsedAt = now;
    // Re-insert: the map's order is least recently used first, which is what eviction removes.
    this.sessions.delete(key);
    this.sessions.set(key, session);
    return session;
  }

  delete(id: string | undefined): void {
    if (id) this.sessions.delete(keyOf(id));
  }

  /** Remember a sign-in in flight; returns its `state` (also the value of the sign-in cookie). */
  begin(login: Omit<PendingLogin, 'createdAt'>): string {
    this.sweep();
    const max = this.limits.maxPending ?? 1000;
    while (this.pending.size >= max) this.pending.delete(this.evictable());
    const state = randomToken();
    this.pending.set(keyOf(state), { ...login, createdAt: this.now() });
    return state;
  }

  /**
   * The sign-in to drop when they are full: the oldest of the source holding the most. Dropping the
   * oldest of all let one source that starts sign-ins faster than people finish them (a thousand
   * requests take about a second) push out everyone else's, so nobody could sign in.
   */
  private evictable(): string {
    const counts = new Map<string, number>();
    let richest: string | undefined;
    for (const { source } of this.pending.values()) {
      const n = (counts.get(source) ?? 0) + 1;
      counts.set(source, n);
      if (richest === undefined || n > counts.get(richest)!) richest = source;
    }
    for (const [key, login] of this.pending) if (login.source === richest) return key;
    return this.pending.keys().next().value!;
  }

  /** Take (once) the sign-in of this state, if it is still fresh. */
  take(state: string | undefined): PendingLogin | undefined {
    if (!state) return undefined;
    const key = keyOf(state);
    const login = this.pending.get(key);
    this.pending.delete(key);
    if (!login || this.now() - login.createdAt >= (this.limits.pendingMs ?? 600_000)) return undefined;
    return login;
  }

  get size(): { sessions: number; pending: number } {
    return { sessions: this.sessions.size, pending: this.pending.size };
  }

  /** Drop what has ended (at most once a second: sign-in starts are unauthenticated). */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [key, s] of this.sessions) {
      if (now >= s.endsAt || now - s.lastUsedAt >= this.limits.idleMs) this.sessions.delete(key);
    }
    const pendingMs = this.limits.pendingMs ?? 600_000;
    for (const [key, p] of this.pending) if (now - p.createdAt >= pendingMs) this.pending.delete(key);
  }
}
