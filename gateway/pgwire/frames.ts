/**
 * Chunks → Postgres messages, split-safe, without copying when a message lies inside one chunk.
 *
 * Every message after the startup phase is `type (1 byte) | length (int32, includes itself) | body`.
 * The startup phase has no type byte: `length | code | body` (StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest). No sockets here: the caller feeds chunks and gets frames back.
 */

export interface Frame {
  /** Message type byte as a char ('Q', 'P', 'D' ...); '' for an untyped startup-phase packet. */
  type: string;
  /** The whole message: type byte (if any), length and body. Forward this to pass it through untouched. */
  bytes: Buffer;
  /** The body alone (after the length). A view into `bytes`. */
  body: Buffer;
}

export class ProtocolViolation extends Error {
  constructor(
    message: string,
    /** SQLSTATE for the FATAL the client gets: 08P01 protocol_violation, 54000 program_limit_exceeded. */
    readonly sqlstate = '08P01',
  ) {
    super(message);
    this.name = 'ProtocolViolation';
  }
}

export class FrameReader {
  /** Chunks of an incomplete message, joined only once it is whole (no quadratic re-copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Total size of the incomplete message once its header is known, else 0. */
  private needed = 0;
  /** True until the first typed message is expected (the startup phase has no type byte). */
  private untyped: boolean;

  constructor(
    private readonly maxMessageBytes: number,
    options: { startup?: boolean } = {},
  ) {
    this.untyped = options.startup ?? false;
  }

  /** After the startup packet: every later message is typed. */
  expectTyped(): void {
    this.untyped = false;
  }

  /** Bytes received but not yet a whole message. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Take back what is buffered (used when a connection changes hands, e.g. after TLS negotiation). */
  drain(): Buffer {
    const rest = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
    return rest;
  }

  /**
   * Append a chunk and return the whole messages it completes. In the startup phase at most one
   * packet is returned per call, because what follows it may be of a different kind (typed, or TLS).
   */
  push(chunk: Buffer): Frame[] {
    let data = chunk;
    const frames: Frame[] = [];
    let offset = 0;
    if (this.pendingBytes > 0) {
      if (this.needed > 0 && this.pendingBytes + chunk.length < this.needed) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        return [];
      }
      if (this.needed > 0 && !this.untyped) {
        // Complete the split message with just the bytes it lacks; the rest of the chunk is framed in
        // place. (Joining the whole chunk would copy every chunk of a large result once more.)
        const take = this.needed - this.pendingBytes;
        this.pending.push(chunk.subarray(0, take));
        const bytes = Buffer.concat(this.pending, this.needed);
        frames.push({ type: String.fromCharCode(bytes[0]!), bytes, body: bytes.subarray(5) });
        offset = take;
      } else {
        this.pending.push(chunk);
        data = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      }
      this.pending = [];
      this.pendingBytes = 0;
      this.needed = 0;
    }
    while (offset < data.length) {
      const header = this.untyped ? 4 : 5;
      if (data.length - offset < header) break;
      const lengthAt = this.untyped ? offset : offset + 1;
      const length = data.readInt32BE(lengthAt);
      const minimum = this.untyped ? 8 : 4;
      if (length < minimum) {
        throw new ProtocolViolation(`invalid message length ${length}`);
      }
      if (length > this.maxMessageBytes) {
        throw new ProtocolViolation(
          `message of ${length} bytes exceeds the gateway's limit of ${this.maxMessageBytes} bytes`,
          '54000',
        );
      }
      const total = length + (this.untyped ? 0 : 1);
      if (data.length - offset < total) {
        this.needed = total;
        break;
      }
      const bytes = data.subarray(offset, offset + total);
      frames.push({
        type: this.untyped ? '' : String.fromCharCode(data[offset]!),
        bytes,
        body: bytes.subarray(this.untyped ? 4 : 5),
      });
      offset += total;
      if (this.untyped) break;
    }
    if (offset < data.length) {
      const rest = data.subarray(offset);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      if (rest.length < (this.untyped ? 4 : 5)) this.needed = 0;
    } else {
      this.needed = 0;
    }
    return frames;
  }
}
