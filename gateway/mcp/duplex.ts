/**
 * Two connected in-memory streams (Node 20 has no `stream.duplexPair`): what one side writes, the other
 * reads, with backpressure — a write is acknowledged once the reader has room for it. An MCP session's
 * database client sits on one side; an ordinary gateway session (runSession) on the other.
 */
import { Duplex } from 'node:stream';

class Side extends Duplex {
  peer!: Side;
  /** The peer's write callback, held until this side's reader asks for more. */
  private held: ((err?: Error | null) => void) | undefined;
  /** The peer ended its writing side: nothing more will be pushed here. */
  private eof = false;

  private endReading(): void {
    if (this.eof || this.destroyed) return;
    this.eof = true;
    this.push(null);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.peer.destroyed || this.peer.eof) {
      callback(new Error('the other side of the stream is closed'));
      return;
    }
    if (this.peer.push(chunk)) callback();
    else this.peer.held = callback;
  }

  override _read(): void {
    const callback = this.held;
    this.held = undefined;
    callback?.();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.peer.endReading();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.held?.();
    this.held = undefined;
    if (!this.peer.destroyed) {
      this.peer.endReading();
      this.peer.destroy();
    }
    callback(err);
  }
}

export function duplexPair(): [Duplex, Duplex] {
  const a = new Side();
  const b = new Side();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
