/**
 * What a session needs of a connection: bytes in ('data'), bytes out (write, with backpressure), and
 * its end. A TCP or TLS socket is one; so is the tunnel's WebSocket (transport/ws-stream.ts), without a
 * stream in between. A leaf module: it imports nothing.
 */
export interface ByteStream {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close' | 'drain', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'end' | 'close' | 'drain', listener: () => void): this;
  off(event: 'data', listener: (chunk: Buffer) => void): this;
  off(event: 'end' | 'close' | 'drain', listener: () => void): this;
  off(event: 'error', listener: (err: Error) => void): this;
  /** False when the bytes queued to be sent passed the high-water mark: wait for 'drain'. */
  write(chunk: Buffer | string): boolean;
  /** Close after what is queued; with `chunk`, send those last bytes first. */
  end(): unknown;
  end(chunk: Buffer | string): unknown;
  /** Close now, dropping what is queued. */
  destroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  /** Bytes queued to be sent. */
  readonly writableLength: number;
}
