/**
 * The places of connections that have not authenticated yet, shared between their sources.
 *
 * The cap (`listen.max_unauthenticated`) is global, so one source holding every place — idle sockets
 * renewed every `login_timeout` — would keep everyone else out. When the places are full, a connection
 * from a source holding fewer of them takes the oldest place of the source holding the most (the
 * caller closes that connection), as long as that source would still hold at least as many as the
 * newcomer's. A source cannot take places from itself, so one client (or every client behind one load
 * balancer) sees the plain cap. A source is an IPv4 address or an IPv6 /64 (what one host is given).
 */
export class PlacesBySource<T> {
  private readonly bySource = new Map<string, Set<T>>();
  private total = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.total;
  }

  /** A place for `holder` from `source`: taken, taken from `evict` (close it), or refused. */
  take(source: string, holder: T): { ok: true; evict?: T } | { ok: false } {
    if (this.total < this.max) {
      this.add(source, holder);
      return { ok: true };
    }
    const mine = this.bySource.get(source)?.size ?? 0;
    const [richest, held] = this.richest();
    if (richest === undefined || richest === source || held.size <= mine + 1) return { ok: false };
    const evict = held.values().next().value as T;
    this.release(richest, evict);
    this.add(source, holder);
    return { ok: true, evict };
  }

  /** Give a place back (idempotent). */
  release(source: string, holder: T): void {
    const held = this.bySource.get(source);
    if (!held?.delete(holder)) return;
    this.total--;
    if (held.size === 0) this.bySource.delete(source);
  }

  private add(source: string, holder: T): void {
    let held = this.bySource.get(source);
    if (!held) {
      held = new Set();
      this.bySource.set(source, held);
    }
    held.add(holder);
    this.total++;
  }

  private richest(): [string | undefined, Set<T>] {
    let best: [string | undefined, Set<T>] = [undefined, new Set()];
    for (const [source, held] of this.bySource) if (held.size > best[1].size) best = [source, held];
    return best;
  }
}

/** The source a connection's places are counted under: its IPv4 address, or its IPv6 /64. */
export function sourceKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  return `${expandIpv6(address).slice(0, 4).join(':')}::/64`;
}

/** sourceKey of an endpoint as transport/http.ts's sourceOf prints it: `1.2.3.4:5678` or `[::1]:5678`. */
export function sourceKeyOfEndpoint(endpoint: string): string {
  return sourceKey(endpoint.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''));
}

/** The eight groups of an IPv6 address, `::` expanded (a zone id dropped), lower case without leading zeros. */
function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array(Math.max(0, 8 - left.length - right.length)).fill('0');
  return [...left, ...zeros, ...right].map((g) => g.replace(/^0+(?=.)/, ''));
}
