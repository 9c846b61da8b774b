/**
 * A raw Postgres protocol client for tests: logs in (SCRAM-SHA-256, or none) over plain TCP, then
 * sends whatever bytes a test builds and collects the server's messages, decoded just enough to
 * compare two servers (the gateway and Postgres itself) message by message.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { type Frame, FrameReader } from '../../gateway/pgwire/frames.js';
import { ScramClient } from '../../src/shared/scram.js';

export interface RawMessage {
  type: string;
  body: Buffer;
}

export class RawPg {
  readonly messages: RawMessage[] = [];
  closed = false;
  private readonly reader = new FrameReader(1 << 30);
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.reader.push(chunk) as Frame[])
        this.messages.push({ type: f.type, body: Buffer.from(f.body) });
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Connect and log in; resolves after the first ReadyForQuery (or rejects with the server's error). */
  static async connect(opts: {
    port: number;
    user: string;
    database: string;
    password?: string;
    params?: Record<string, string>;
  }): Promise<RawPg> {
    const socket = netConnect({ host: '127.0.0.1', port: opts.port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const c = new RawPg(socket);
    socket.write(serialize.startup({ user: opts.user, database: opts.database, ...opts.params }));
    let scram: ScramClient | undefined;
    let seen = 0;
    for (;;) {
      await c.until(() => c.messages.length > seen || c.closed, 15_000);
      if (c.messages.length <= seen) throw new Error('connection closed during login');
      const m = c.messages[seen++]!;
      if (m.type === 'E') throw new Error(`login refused: ${fieldsOf(m.body).M}`);
      if (m.type === 'Z') break;
      if (m.type !== 'R') continue;
      const code = m.body.readInt32BE(0);
      if (code === 10) {
        scram = new ScramClient(opts.password ?? '');
        socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
      } else if (code === 11) {
        socket.write(
          serialize.sendSCRAMClientFinalMessage(scram!.final(m.body.subarray(4).toString('utf8'))),
        );
      } else if (code === 3) {
        socket.write(serialize.password(opts.password ?? ''));
      }
    }
    c.messages.splice(0);
    return c;
  }

  async until(predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline)
        throw new Error(`timed out; got ${this.messages.map((m) => m.type).join('')}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** Send bytes; wait until `readies` ReadyForQuery messages (or the close); return and clear what came. */
  async exchange(bytes: Buffer, readies = 1, timeoutMs = 15_000): Promise<RawMessage[]> {
    this.socket.write(bytes);
    await this.until(
      () => this.closed || this.messages.filter((m) => m.type === 'Z').length >= readies,
      timeoutMs,
    );
    return this.messages.splice(0);
  }

  close(): void {
    if (!this.closed) this.socket.end(serialize.end());
  }
}

export function fieldsOf(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    out[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

/**
 * A comparable rendering of server messages: type plus decoded content, leaving out what differs
 * legitimately between two servers (ParameterStatus values, BackendKeyData, error positions in
 * source files, NOTIFY's sender pid).
 */
export function render(messages: RawMessage[]): string[] {
  return messages.map((m) => {
    switch (m.type) {
      case 'E':
      case 'N': {
        const f = fieldsOf(m.body);
        return `${m.type} ${f.S} ${f.C} ${f.M}`;
      }
      case 'C':
        return `C ${m.body.toString('utf8', 0, m.body.length - 1)}`;
      case 'D':
      case 'd':
      case 'T':
      case 't':
      case 'G':
      case 'H':
        return `${m.type} ${m.body.toString('hex')}`;
      case 'A':
        return `A ${m.body.subarray(4).toString('utf8').replace(/\0/g, '|')}`;
      case 'Z':
        return `Z ${String.fromCharCode(m.body[0]!)}`;
      case 'S':
        return `S ${m.body.toString('utf8').split('\0')[0]}`;
      default:
        return m.type;
    }
  });
}

/** The fields of every ErrorResponse among `messages`. */
export const errorsOf = (messages: RawMessage[]) =>
  messages.filter((m) => m.type === 'E').map((m) => fieldsOf(m.body));

/** Every DataRow's bytes as text, one line each (to search for a value that must not be there). */
export const rowsText = (messages: RawMessage[]) =>
  messages
    .filter((m) => m.type === 'D')
    .map((m) => m.body.toString('utf8'))
    .join('\n');
