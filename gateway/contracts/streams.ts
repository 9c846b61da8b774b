/**
 * Whether a client stream's `writableLength` counts every reference it still holds to bytes written to
 * it. The relay reuses an upstream read buffer only when it does (transport/upstream-reads.ts): a
 * stream that acknowledges a write while still holding the buffer (an in-memory pair passing the
 * chunk on to its reader) would otherwise send bytes a later read overwrote — another row, or a value
 * a masking rule had replaced. A leaf module: the tunnel's stream marks itself, the relay asks.
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const COUNTS_HELD = Symbol('writableLength counts held writes');

/** Mark a stream whose writableLength was made to count what it holds (the tunnel's WebSocket stream). */
export function markCountsHeldWrites(stream: Duplex): void {
  (stream as Duplex & { [COUNTS_HELD]?: true })[COUNTS_HELD] = true;
}

/** True for sockets (net, TLS: libuv holds a write until it completes, and it is counted till then) and marked streams. */
export function countsHeldWrites(stream: Duplex): boolean {
  return stream instanceof Socket || (stream as Duplex & { [COUNTS_HELD]?: true })[COUNTS_HELD] === true;
}
