/**
 * Reads from a plain-TCP upstream socket into memory the gateway reuses (`net.Socket`'s `onread`).
 *
 * By default each read lands in a fresh 64 KB allocation that only the garbage collector frees: a
 * large result leaves tens of MB of dead read buffers behind between collections, and the freed memory
 * stays with the process, fragmented. Here a read lands in one of two kinds of buffer:
 *
 * - a buffer shared by every socket, while a session is not streaming: its bytes are handed on as a
 *   copy the size of the read, so nothing ever keeps a reference into it (any socket's next read may
 *   land in it);
 * - while a session streams (its last read was large), a buffer of its own, lent to the reader without
 *   a copy. The reader answers whether it kept a reference (a write its client's socket queued); if it
 *   did, the buffer is left to it and the next read gets a fresh one. A small read ends the streaming
 *   and the session lets its buffer go, so an idle session holds none.
 *
 * Node asks for the buffer of the next read right after each read (before any other socket's read),
 * and a read is delivered synchronously: one buffer can serve every socket safely as long as no one
 * keeps a reference into it, which is why only a session's own buffer is ever lent.
 *
 * Before a reader is lent the reads (during login, or a query before the relay owns the socket), they
 * are emitted as 'data' events (copies), so code written for a plain socket works unchanged.
 */
import type { OnReadOpts, Socket } from 'node:net';

/** What a read can fill: libuv's own read size. */
const READ_SIZE = 64 * 1024;
/** A read at least this large means a result is streaming: the next ones get a buffer of their own. */
const STREAMING = 16 * 1024;

let shared: Buffer | undefined;

/** Takes a view of a read, valid only during the call; returns true if it kept a reference into it. */
export type LentReader = (view: Buffer) => boolean;

export class UpstreamReads {
  private socket: Socket | undefined;
  private reader: LentReader | undefined;
  /** This session's own buffer while it streams. */
  private own: Buffer | undefined;
  private streaming = false;

  /** For `net.connect({ onread })`. */
  readonly onread: OnReadOpts = {
    buffer: () => this.nextBuffer(),
    callback: (bytes: number, buffer: Uint8Array) => {
      this.delivered(bytes, buffer as Buffer);
      return true; // false would pause the socket: the relay pauses it itself, on backpressure
    },
  };

  /** The socket made with `onread`: reads go to its 'data' listeners until a reader is lent. */
  attach(socket: Socket): void {
    this.socket = socket;
  }

  /** From now on every read goes to `reader`, a session's own buffer without a copy. */
  lend(reader: LentReader): void {
    this.reader = reader;
  }

  private delivered(bytes: number, buffer: Buffer): void {
    if (!this.reader) this.socket?.emit('data', Buffer.copyBytesFrom(buffer, 0, bytes));
    else if (buffer !== this.own) this.reader(Buffer.copyBytesFrom(buffer, 0, bytes));
    else if (this.reader(buffer.subarray(0, bytes))) this.own = undefined; // kept: the buffer is the reader's now
    this.streaming = this.reader !== undefined && bytes >= STREAMING;
  }

  private nextBuffer(): Buffer {
    if (!this.streaming) {
      this.own = undefined;
      shared ??= Buffer.allocUnsafeSlow(READ_SIZE);
      return shared;
    }
    this.own ??= Buffer.allocUnsafeSlow(READ_SIZE);
    return this.own;
  }
}
