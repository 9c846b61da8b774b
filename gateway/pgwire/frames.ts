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
  /** The body alone (after the length). A view into `bytes`; empty for a run (`count` set). */
  body: Buffer;
  /** Set when the frame is a run of `count` consecutive messages of one type (`FrameReader.next`). */
  count?: number;
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

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  /** Chunks of an incomplete message, joined only once it is whole (no quadratic re-copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Total size of the incomplete message once its header is known, else 0. */
  private needed = 0;
  /** True until the first typed message is expected (the startup phase has no type byte). */
  private untyped: boolean;
  /** The chunk being read by next(), and where in it the next message starts. */
  private data: Buffer = EMPTY;
  private offset = 0;
  /** `data` is memory the caller reuses after this chunk: what is kept of it must be copied. */
  private dataBorrowed = false;
  /** A message that was split across chunks, completed by the last feed(): next() returns it first. */
  private completed: Frame | undefined;

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
    this.feed(chunk);
    const frames: Frame[] = [];
    for (;;) {
      const wasUntyped = this.untyped;
      const frame = this.next();
      if (!frame) break;
      frames.push(frame);
      if (wasUntyped) {
        this.keepRest();
        break;
      }
    }
    return frames;
  }

  /**
   * Pull-style reading, for a caller whose state decides how to read what follows: feed() a chunk,
   * then call next() until it returns undefined (the rest is kept for the next chunk).
   *
   * `borrowed`: the chunk's memory is reused for the next read once the caller is done with it. The
   * frames next() returns are views into it, valid until then; what the reader keeps for the next
   * chunk (an incomplete message) it copies.
   */
  feed(chunk: Buffer, borrowed = false): void {
    if (this.offset < this.data.length || this.completed)
      throw new Error('feed() before next() finished the last chunk');
    this.data = chunk;
    this.dataBorrowed = borrowed;
    this.offset = 0;
    if (this.pendingBytes === 0) return;
    if (this.needed > 0 && this.pendingBytes + chunk.length < this.needed) {
      this.pending.push(borrowed ? Buffer.from(chunk) : chunk);
      this.pendingBytes += chunk.length;
      this.data = EMPTY;
      return;
    }
    if (this.needed > 0 && !this.untyped) {
      // Complete the split message with just the bytes it lacks; the rest of the chunk is framed in
      // place. (Joining the whole chunk would copy every chunk of a large result once more.)
      const take = this.needed - this.pendingBytes;
      this.pending.push(chunk.subarray(0, take));
      const bytes = Buffer.concat(this.pending, this.needed);
      this.completed = { type: String.fromCharCode(bytes[0]!), bytes, body: bytes.subarray(5) };
      this.offset = take;
    } else {
      this.pending.push(chunk);
      this.data = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.dataBorrowed = false;
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.needed = 0;
  }

  /**
   * The next whole message of the chunk fed, or undefined when it needs more bytes. With `runType`
   * (a type byte, e.g. 0x44 'D'), consecutive whole messages of that type come back as one frame
   * with `count` set and an empty `body`: a caller that only needs to count and pass them (a result
   * nobody looks inside) then handles a 64 KB read of rows as one object, not one per row.
   */
  next(runType = -1): Frame | undefined {
    if (this.completed) {
      const frame = this.completed;
      this.completed = undefined;
      return frame;
    }
    const data = this.data;
    const start = this.offset;
    const total = this.messageAt(start);
    if (total === 0) {
      this.keepRest();
      return undefined;
    }
    const type = this.untyped ? -2 : data[start]!;
    let end = start + total;
    let count = 1;
    if (type === runType) {
      while (end < data.length && data[end] === runType) {
        const more = this.messageAt(end);
        if (more === 0) break;
        end += more;
        count++;
      }
    }
    this.offset = end;
    const bytes = data.subarray(start, end);
    if (count > 1) return { type: String.fromCharCode(type), bytes, body: EMPTY, count };
    return {
      type: this.untyped ? '' : String.fromCharCode(type),
      bytes,
      body: bytes.subarray(this.untyped ? 4 : 5),
    };
  }

  /** Size of the whole message starting at `at` in the current chunk, or 0 if it is not all there. */
  private messageAt(at: number): number {
    const data = this.data;
    const header = this.untyped ? 4 : 5;
    if (data.length - at < header) return 0;
    const length = data.readInt32BE(this.untyped ? at : at + 1);
    if (length < (this.untyped ? 8 : 4)) throw new ProtocolViolation(`invalid message length ${length}`);
    if (length > this.maxMessageBytes) {
      throw new ProtocolViolation(
        `message of ${length} bytes exceeds the gateway's limit of ${this.maxMessageBytes} bytes`,
        '54000',
      );
    }
    const total = length + (this.untyped ? 0 : 1);
    if (data.length - at < total) {
      this.needed = total;
      return 0;
    }
    return total;
  }

  /** Keep the unread rest of the chunk for the next feed(). */
  private keepRest(): void {
    const data = this.data;
    // Nothing fed, or feed() already kept an incomplete message's bytes (and its `needed`).
    if (data.length === 0) return;
    if (this.offset < data.length) {
      const rest = this.dataBorrowed ? Buffer.from(data.subarray(this.offset)) : data.subarray(this.offset);
      this.pending = [rest];
      this.pendingBytes = rest.length;
      if (rest.length < (this.untyped ? 4 : 5)) this.needed = 0;
    } else {
      this.needed = 0;
    }
    this.data = EMPTY;
    this.offset = 0;
  }
}
