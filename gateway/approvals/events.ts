/**
 * GET /v1/events: server-sent events that say "requests changed" — the console's inbox refetches
 * /v1/approvals on each, so what a caller sees is still decided by that route's own checks. An event
 * carries only which request changed (kind and id), never its content.
 *
 * Changes made through this gateway arrive at once (ApprovalService.onChange); changes made through
 * another replica are noticed by a shared poll of the pending requests while anyone listens.
 */

import type { RawResponse } from '../transport/http.js';
import { HttpError, type Route } from '../transport/router.js';
import type { ApprovalStore, GrantStore } from './model.js';
import type { RequestChange } from './service.js';

export interface ChangeSource {
  onChange(listener: (change: RequestChange) => void): () => void;
}

export interface EventOptions {
  /** How often pending requests are compared while anyone listens (changes on other replicas). Default 2 s. */
  pollMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream. Default 15 s. */
  heartbeatMs?: number;
  /** A stream ends after this long; the browser reconnects and is authenticated again. Default 5 min. */
  maxStreamMs?: number;
  /** Most streams open at once on this gateway (each is a socket held open). Default 1000. */
  maxStreams?: number;
  /**
   * Most streams one identity may hold open (a person's console tabs): without it one token could hold
   * every place of `maxStreams` and keep everyone's inbox from going live. Default 20.
   */
  maxStreamsPerIdentity?: number;
}

type Listener = (change: RequestChange | { kind: 'any' }) => void;

/** One poll for all listeners: a fingerprint of the pending requests (id and revision). */
function createFeed(source: ChangeSource, store: ApprovalStore & GrantStore, pollMs: number) {
  const listeners = new Set<Listener>();
  let timer: NodeJS.Timeout | undefined;
  let last = '';
  let polling = false;

  const broadcast: Listener = (change) => {
    for (const listener of listeners) listener(change);
  };
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      const [approvals, grants] = await Promise.all([
        store.listApprovals({ status: 'pending' }),
        store.listGrants({ status: 'pending' }),
      ]);
      const print = [
        ...approvals.map((a) => `s${a.id}.${a.revision ?? 0}`),
        ...grants.map((g) => `a${g.id}.${g.revision ?? 0}`),
      ].join(',');
      if (last && print !== last) broadcast({ kind: 'any' });
      last = print;
    } catch {
      // The next poll tries again; local changes still arrive through onChange.
    } finally {
      polling = false;
    }
  };
  let unsubscribe: (() => void) | undefined;

  return {
    get size() {
      return listeners.size;
    },
    subscribe(listener: Listener): () => void {
      listeners.add(listener);
      if (listeners.size === 1) {
        unsubscribe = source.onChange(broadcast);
        void poll();
        timer = setInterval(() => void poll(), pollMs);
        timer.unref();
      }
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          clearInterval(timer);
          unsubscribe?.();
          last = '';
        }
      };
    },
  };
}

/** Wait until `wake` is called, `ms` pass, or the signal aborts. */
function pause(ms: number, signal: AbortSignal, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
    onWake(done);
  });
}

async function* eventStream(
  subscribe: (listener: Listener) => () => void,
  signal: AbortSignal,
  options: Required<EventOptions>,
): AsyncGenerator<string> {
  const pending: (RequestChange | { kind: 'any' })[] = [];
  let wake: (() => void) | undefined;
  const off = subscribe((change) => {
    pending.push(change);
    wake?.();
  });
  const endAt = Date.now() + options.maxStreamMs;
  try {
    // retry: how long the browser waits before reconnecting; the first event lets it show "live".
    yield `retry: 3000\nevent: ready\ndata: {}\n\n`;
    while (!signal.aborted && Date.now() < endAt) {
      if (pending.length === 0) {
        await pause(Math.min(options.heartbeatMs, endAt - Date.now()), signal, (w) => {
          wake = w;
        });
        wake = undefined;
      }
      if (signal.aborted) return;
      if (pending.length > 0) {
        const changes = pending.splice(0, pending.length);
        yield `event: requests\ndata: ${JSON.stringify({ changes })}\n\n`;
      } else yield ': keep-alive\n\n';
    }
  } finally {
    off();
  }
}

export function eventRoutes(
  deps: { source: ChangeSource; store: ApprovalStore & GrantStore },
  opts: EventOptions = {},
): Route[] {
  const options: Required<EventOptions> = {
    pollMs: opts.pollMs ?? 2000,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    maxStreamMs: opts.maxStreamMs ?? 300_000,
    maxStreams: opts.maxStreams ?? 1000,
    maxStreamsPerIdentity: opts.maxStreamsPerIdentity ?? 20,
  };
  const feed = createFeed(deps.source, deps.store, options.pollMs);
  const perIdentity = new StreamCounts();
  return [
    {
      method: 'GET',
      path: '/v1/events',
      access: 'identity',
      handler: async ({ signal, identity }): Promise<RawResponse> => {
        const who = `${identity.issuer}\u0000${identity.subject}`;
        if (perIdentity.of(who) >= options.maxStreamsPerIdentity)
          throw new HttpError(
            429,
            'too_many_requests',
            `you have ${options.maxStreamsPerIdentity} live streams open on this gateway, the most one identity may: close one (a console tab) and try again`,
          );
        if (feed.size >= options.maxStreams)
          throw new HttpError(503, 'unavailable', 'too many live streams on this gateway; try again shortly');
        // Counted from here: the stream ends with the client (abort) or at maxStreamMs (finally).
        const release = perIdentity.open(who);
        signal.addEventListener('abort', release, { once: true });
        return {
          raw: true,
          contentType: 'text/event-stream; charset=utf-8',
          headers: { 'x-accel-buffering': 'no' },
          body: releasing(eventStream(feed.subscribe, signal, options), release),
        };
      },
    },
  ];
}

/** Open streams per identity; `open` returns the stream's release (idempotent). */
class StreamCounts {
  private readonly counts = new Map<string, number>();

  of(who: string): number {
    return this.counts.get(who) ?? 0;
  }

  open(who: string): () => void {
    this.counts.set(who, this.of(who) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.of(who) - 1;
      if (left > 0) this.counts.set(who, left);
      else this.counts.delete(who);
    };
  }
}

async function* releasing<T>(stream: AsyncGenerator<T>, release: () => void): AsyncGenerator<T> {
  try {
    yield* stream;
  } finally {
    release();
  }
}
