/**
 * The client's side of the startup handshake, answered by the gateway itself: the client never
 * authenticates to PostgreSQL and never learns the database password.
 *
 * SSLRequest and GSSENCRequest are answered 'N' (the tunnel is already TLS; GSS encryption would
 * blind inspection), a newer protocol minor version gets NegotiateProtocolVersion, a CancelRequest
 * is handed back to the caller, and the one-time local password (when the tunnel carries one) is
 * checked with SCRAM-SHA-256.
 */
import type { Duplex } from 'node:stream';
import { ScramError, ScramServer } from '../../src/shared/scram.js';
import {
  authenticationCleartextPassword,
  authenticationOk,
  authenticationSasl,
  authenticationSaslContinue,
  authenticationSaslFinal,
  errorResponse,
  negotiateProtocolVersion,
} from '../pgwire/backend.js';
import { type Frame, FrameReader, ProtocolViolation } from '../pgwire/frames.js';
import { BodyReader, parseStartupPacket, type StartupPacket } from '../pgwire/frontend.js';
import type { StartupSetting } from '../policy/startup.js';

export type StartupResult =
  | {
      kind: 'session';
      /** Every setting the client asked for, in order (`options` first, then direct parameters). */
      settings: StartupSetting[];
      reader: FrameReader;
      /** The startup packet's parameters as the client sent them (user, database, application_name ...). */
      startup: Record<string, string>;
    }
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

/** Startup parameters that are not settings: the gateway decides them (the database is the connection's). */
const NOT_SETTINGS = new Set(['user', 'database', 'options', 'replication']);

/** Encodings the gateway can read SQL in. Others (SJIS, BIG5 ...) could hide quotes from the parser. */
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode']);

export class StartupRefused extends Error {
  constructor(
    message: string,
    readonly sqlstate: string,
  ) {
    super(message);
  }
}

/** Reads packets from a client stream one at a time until the handshake is done. */
class PacketSource {
  private readonly frames: Frame[] = [];
  private waiting: ((frame: Frame) => void) | undefined;
  private failed: ((err: Error) => void) | undefined;
  /**
   * Why no more packets will come (the client left, or sent bytes that are not a packet). Kept, so a
   * next() asked for after the fact fails at once: the client may leave between two packets, while
   * the handshake is between two waits.
   */
  private over: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.collect(chunk);
    } catch (err) {
      this.fail(err as Error);
    }
  };
  private readonly onEnd = () => this.fail(new StartupRefused('the client closed the connection', '08006'));

  constructor(
    private readonly stream: Duplex,
    readonly reader: FrameReader,
  ) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onEnd);
  }

  private collect(chunk: Buffer): void {
    for (const frame of this.reader.push(chunk)) this.frames.push(frame);
    this.deliver();
  }

  private fail(err: Error): void {
    this.over ??= err;
    const failed = this.failed;
    this.failed = undefined;
    this.waiting = undefined;
    failed?.(err);
  }

  private deliver(): void {
    if (this.waiting && this.frames.length > 0) {
      const resolve = this.waiting;
      this.waiting = undefined;
      this.failed = undefined;
      resolve(this.frames.shift()!);
    }
  }

  /** The next packet, if it comes before `deadline` (Date.now() ms). */
  next(deadline: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StartupRefused('timed out waiting for the client to log in', '08006')),
        Math.max(0, deadline - Date.now()),
      );
      this.waiting = (frame) => {
        clearTimeout(timer);
        resolve(frame);
      };
      this.failed = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      // A startup-phase push returns one packet at a time; ask for what is already buffered.
      try {
        if (this.frames.length === 0 && this.reader.buffered > 0) this.collect(Buffer.alloc(0));
        else this.deliver();
      } catch (err) {
        this.fail(err as Error);
      }
      // Still waiting (fail() and deliver() clear `failed`) but the client is already gone: fail now.
      if (this.over) this.fail(this.over);
    });
  }

  /**
   * The handshake is done: stop reading packets, but keep what the client sends from now on (a
   * pipelining client does not wait for ReadyForQuery) until the relay takes it (`late()`). A
   * flowing stream without a listener would drop it. More than `limit` bytes end the connection.
   */
  hold(limit: number): { leftover: Buffer; late: () => Buffer } {
    const leftover = this.detach();
    const late: Buffer[] = [];
    let bytes = 0;
    const onLate = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) this.stream.destroy();
      else late.push(chunk);
    };
    this.stream.on('data', onLate);
    const take = () => {
      this.stream.off('data', onLate);
      return Buffer.concat(late.splice(0));
    };
    return { leftover, late: take };
  }

  /** Stop reading; return every byte received past what the handshake consumed. */
  detach(): Buffer {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('error', this.onEnd);
    const parsed = this.frames.splice(0).map((f) => f.bytes);
    return Buffer.concat([...parsed, this.reader.drain()]);
  }
}

export interface StartupOptions {
  maxMessageBytes: number;
  /** The one-time password the client must prove (SCRAM); undefined = the tunnel's bearer token is enough. */
  localPassword?: string;
  /**
   * Ask for a cleartext password instead and check it with this (the native listener: the password is
   * an access token, and the channel is TLS); it throws StartupRefused to refuse the login.
   */
  passwordCheck?: (password: string, startup: Record<string, string>) => Promise<void>;
  /**
   * When the whole handshake must be over (Date.now() ms): one deadline for every packet, so a
   * client cannot stay unauthenticated by sending something harmless now and then. Default: 30 s
   * from now (or `timeoutMs` from now).
   */
  deadline?: number;
  timeoutMs?: number;
  /**
   * The transport already negotiated encryption (the native listener's TLS): an SSLRequest or
   * GSSENCRequest now is a protocol violation, as PostgreSQL refuses one after its SSL negotiation.
   */
  encrypted?: boolean;
}

/**
 * Run the client's handshake up to (not including) AuthenticationOk's follow-ups: after this the
 * caller connects upstream and sends ParameterStatus, BackendKeyData and ReadyForQuery.
 * Returns the leftover client bytes (a pipelining client may already have sent its first query).
 */
export async function acceptStartup(
  client: Duplex,
  options: StartupOptions,
): Promise<{ result: StartupResult; leftover: Buffer; late?: () => Buffer }> {
  const deadline = options.deadline ?? Date.now() + (options.timeoutMs ?? 30_000);
  const reader = new FrameReader(Math.min(options.maxMessageBytes, 1 << 20), { startup: true });
  const source = new PacketSource(client, reader);
  try {
    let packet: StartupPacket;
    // Each is answered once ('N'), as PostgreSQL does; a repeat (or any, once the transport is
    // encrypted) is refused: answering it forever would keep an unauthenticated client here.
    const negotiated = new Set<string>(options.encrypted ? ['ssl-request', 'gssenc-request'] : []);
    for (;;) {
      const frame = await source.next(deadline);
      packet = parseStartupPacket(frame.body);
      if (packet.kind === 'ssl-request' || packet.kind === 'gssenc-request') {
        if (negotiated.has(packet.kind)) {
          // PostgreSQL's own answer: a request code it already handled reads as an unknown protocol.
          const code = packet.kind === 'ssl-request' ? '1234.5679' : '1234.5680';
          throw new StartupRefused(
            `unsupported frontend protocol ${code}: server supports 3.0 to 3.0`,
            '0A000',
          );
        }
        negotiated.add(packet.kind);
        client.write(Buffer.from('N'));
        continue;
      }
      break;
    }
    if (packet.kind === 'cancel') {
      return {
        result: { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey },
        leftover: Buffer.alloc(0),
      };
    }
    if (packet.kind !== 'startup') throw new ProtocolViolation('unexpected startup packet');
    if (packet.minor > 0 || packet.protocolOptions.length > 0) {
      client.write(negotiateProtocolVersion(0, packet.protocolOptions));
    }
    if (packet.parameters.replication && packet.parameters.replication !== 'false') {
      throw new StartupRefused('replication connections are not allowed through the gateway', '42501');
    }
    const encoding = packet.parameters.client_encoding;
    if (encoding && !UTF8_NAMES.has(encoding.toLowerCase()) && encoding.toLowerCase() !== 'auto') {
      throw new StartupRefused(
        `client_encoding "${encoding}" is not supported through the gateway: use UTF8`,
        '0A000',
      );
    }
    reader.expectTyped();
    if (options.localPassword !== undefined)
      await checkLocalPassword(client, source, options.localPassword, deadline);
    if (options.passwordCheck)
      await options.passwordCheck(await readCleartextPassword(client, source, deadline), packet.parameters);
    client.write(authenticationOk());

    const settings = startupSettings(packet.parameters);
    const { leftover, late } = source.hold(Math.max(options.maxMessageBytes, 1 << 20));
    return { result: { kind: 'session', settings, reader, startup: packet.parameters }, leftover, late };
  } catch (err) {
    source.detach();
    throw err;
  }
}

/**
 * Every setting the startup packet asks for: the `options` switches (`-c name=value`, `-c`
 * `name=value`, `--name=value`, split as the server splits them), then the other parameters, which the
 * server applies after them. Any other switch is refused: nothing is dropped without a word.
 */
export function startupSettings(parameters: Record<string, string>): StartupSetting[] {
  const settings: StartupSetting[] = [];
  const words = splitOptions(parameters.options ?? '');
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let assignment: string | undefined;
    if (word === '-c') assignment = words[++i];
    else if (word.startsWith('-c')) assignment = word.slice(2);
    else if (word.startsWith('--')) assignment = word.slice(2);
    else {
      throw new StartupRefused(
        `startup option "${word}" is not supported through the gateway: use -c name=value`,
        '42501',
      );
    }
    const eq = assignment?.indexOf('=') ?? -1;
    if (assignment === undefined || eq <= 0) {
      throw new StartupRefused(`startup option "${word}" needs name=value`, '42601');
    }
    // As the server's ParseLongOption: dashes in the name are underscores.
    settings.push({ name: assignment.slice(0, eq).replaceAll('-', '_'), value: assignment.slice(eq + 1) });
  }
  for (const [name, value] of Object.entries(parameters)) {
    if (NOT_SETTINGS.has(name.toLowerCase()) || name.startsWith('_pq_.')) continue;
    settings.push({ name, value });
  }
  return settings;
}

/** pg_split_opts: words separated by whitespace; a backslash takes the next character literally. */
function splitOptions(options: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && /\s/.test(options[i]!)) i++;
    if (i >= options.length) break;
    let word = '';
    while (i < options.length && !/\s/.test(options[i]!)) {
      if (options[i] === '\\' && i + 1 < options.length) i++;
      word += options[i++];
    }
    words.push(word);
  }
  return words;
}

async function checkLocalPassword(client: Duplex, source: PacketSource, password: string, deadline: number) {
  client.write(authenticationSasl(['SCRAM-SHA-256']));
  const initial = await source.next(deadline);
  if (initial.type !== 'p') throw new StartupRefused('expected a SASL initial response', '08P01');
  const r = new BodyReader(initial.body);
  const mechanism = r.cstring();
  if (mechanism !== 'SCRAM-SHA-256')
    throw new StartupRefused(`unsupported SASL mechanism ${mechanism}`, '28000');
  const length = r.int32();
  const clientFirst = r.bytes(Math.max(0, length)).toString('utf8');
  const scram = new ScramServer(password);
  try {
    client.write(authenticationSaslContinue(scram.first(clientFirst)));
    const response = await source.next(deadline);
    if (response.type !== 'p') throw new StartupRefused('expected a SASL response', '08P01');
    client.write(authenticationSaslFinal(scram.final(response.body.toString('utf8'))));
  } catch (err) {
    if (err instanceof ScramError) {
      throw new StartupRefused(
        'password authentication failed: use the one-time password hoopctl connect printed',
        '28P01',
      );
    }
    throw err;
  }
}

/** AuthenticationCleartextPassword, then the PasswordMessage's text. */
async function readCleartextPassword(
  client: Duplex,
  source: PacketSource,
  deadline: number,
): Promise<string> {
  client.write(authenticationCleartextPassword());
  const message = await source.next(deadline);
  if (message.type !== 'p') throw new StartupRefused('expected a password message', '08P01');
  return new BodyReader(message.body).cstring();
}

/** Tell the client why the handshake ended, as a FATAL it can show. */
export function refuseStartup(client: Duplex, err: Error): void {
  const sqlstate = err instanceof StartupRefused || err instanceof ProtocolViolation ? err.sqlstate : '08006';
  client.end(errorResponse({ severity: 'FATAL', code: sqlstate, message: `hoop: ${err.message}` }));
  // end() only closes our side: a client that never closes its own would keep the connection.
  const timer = setTimeout(() => client.destroy(), 5_000);
  timer.unref();
  client.once('close', () => clearTimeout(timer));
}
