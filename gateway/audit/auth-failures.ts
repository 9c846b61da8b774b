/**
 * Failed authentications of nobody in particular (a token that does not verify) are attacker-driven: one
 * record each would let anyone fill the log. They are counted instead, per source and window:
 *
 * - the first failure of a source in a window is recorded at once (`auth.failed`, `count: 1`), so an
 *   attack shows up without delay;
 * - the rest of the window's failures of that source become one record at the window's end (or at
 *   shutdown): `count`, the `reasons` with their counts, and the window;
 * - at most `maxSources` sources are tracked per window; failures from any more are counted together
 *   under source `*` (one record at the window's end);
 * - nothing the attacker chose is recorded: no token, no message, no issuer — the reason is one of the
 *   verifier's fixed codes, the source is the client address without its port (IPv6: its /64).
 *
 * So a window adds at most 2 × maxSources + 1 records, whatever the flood (docs/audit.md).
 * Failures of a known identity (revoked, no access to a connection) stay individual records.
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';

export interface AuthFailureOptions {
  windowMs: number;
  maxSources: number;
  now?: () => number;
}

export interface AuthFailureRecorder {
  /** A bearer token from `source` (ip:port) failed for `reason` (a fixed code) before any identity was known. */
  failed(source: string, reason: string): void;
  /** Record what the current window counted, and start a new one. */
  flush(): void;
  /** Flush and stop the window timer. */
  stop(): void;
}

/** The part of the address a flood is counted by: the IP without the port; an IPv6 address's /64. */
export function sourceKey(source: string): string {
  const v6 = /^\[([0-9a-fA-F:.]+)\]:\d+$/.exec(source);
  if (v6) {
    const groups = expandIpv6(v6[1]!);
    return groups ? `${groups.slice(0, 4).join(':')}::/64` : 'invalid';
  }
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(source);
  if (v4) return v4[1]!;
  return clip(source.replace(/:\d+$/, ''), 64);
}

function expandIpv6(address: string): string[] | undefined {
  if (address.includes('.')) return undefined; // IPv4-mapped: rare here, counted as one key
  const [head = '', tail] = address.split('::');
  const front = head ? head.split(':') : [];
  const back = tail ? tail.split(':') : [];
  const missing = 8 - front.length - back.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  return [...front, ...Array(missing).fill('0'), ...back].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

/** At most `max` characters, marked when cut: for attacker-influenced text that must be recorded. */
export function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

interface Tally {
  total: number;
  recorded: number;
  reasons: Map<string, number>;
}

export function createAuthFailureRecorder(
  record: (input: AuditRecordInput) => void,
  options: AuthFailureOptions,
): AuthFailureRecorder {
  const now = options.now ?? Date.now;
  let windowStart = now();
  let tallies = new Map<string, Tally>();

  const failed = (source: string, reason: string) => {
    let key = sourceKey(source);
    if (!tallies.has(key) && tallies.size >= options.maxSources) key = '*';
    const first = !tallies.has(key);
    if (first) tallies.set(key, { total: 0, recorded: 0, reasons: new Map() });
    const tally = tallies.get(key)!;
    tally.total++;
    tally.reasons.set(reason, (tally.reasons.get(reason) ?? 0) + 1);
    if (first && key !== '*') {
      tally.recorded = 1;
      record({
        type: 'auth.failed',
        source: key,
        data: { reason, count: 1, window_start: new Date(windowStart).toISOString() },
      });
    }
  };

  const flush = () => {
    const ended = tallies;
    const from = new Date(windowStart).toISOString();
    windowStart = now();
    tallies = new Map();
    const to = new Date(windowStart).toISOString();
    for (const [key, tally] of ended) {
      const count = tally.total - tally.recorded;
      if (count <= 0) continue;
      const reasons = [...tally.reasons].sort((a, b) => b[1] - a[1]);
      record({
        type: 'auth.failed',
        source: key,
        data: {
          reason: reasons[0]![0],
          count,
          reasons: Object.fromEntries(reasons),
          window_start: from,
          window_end: to,
          aggregated: true,
        },
      });
    }
  };

  const timer = setInterval(flush, options.windowMs);
  timer.unref();
  return {
    failed,
    flush,
    stop() {
      clearInterval(timer);
      flush();
    },
  };
}
