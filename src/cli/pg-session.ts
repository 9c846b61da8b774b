/**
 * A minimal PostgreSQL client over a tunnel stream, for `hoopctl exec`: startup, then one simple
 * Query at a time, with results delivered row by row (never buffered) and backpressure honoured.
 * Server messages are decoded by pg-protocol's parser.
 */
import type { Duplex } from 'node:stream';
import { parse, serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { ColumnInfo } from './pg-types.js';

export interface PgError {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  routine?: string;
}

export interface QueryHandlers {
  onColumns(columns: ColumnInfo[]): void;
  /** Return false to ask for a pause (the caller resumes with `resume()`). */
  onRow(values: (string | null)[]): boolean | undefined;
  onComplete(tag: string): void;
  onNotice(notice: PgError): void;
}

type Waiter = (message: BackendMessage) => void;

export class PgSession {
  private listener: Waiter | undefined;
  private closedError: Error | undefined;
  /** A FATAL the gateway sent before closing (revoked, shutting down), even between two statements. */
  private fatal: PgError | undefined;
  private readonly parsing: Promise<void>;

  constructor(private readonly stream: Duplex) {
    this.parsing = parse(stream, (message) => {
      if (message.name === 'error' && (message as unknown as { severity?: string }).severity === 'FATAL') {
        this.fatal ??= toPgError(message);
      }
      this.listener?.(message);
    });
    // A tunnel the gateway closes only ends the readable side ('end'); 'close' comes when both sides are done.
    const closed = () => {
      if (this.closedError) return;
      this.closedError = new Error('the gateway closed the connection');
      this.listener?.({ name: 'error', length: 0 } as BackendMessage);
    };
    stream.on('end', closed);
    stream.on('close', closed);
  }

  private next(handler: (message: BackendMessage, done: (err?: Error) => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        this.listener = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.listener = (message) => {
        if (this.closedError && message.name === 'error' && message.length === 0) {
          done(this.closedError);
          return;
        }
        handler(message, done);
      };
      // Closed already (e.g. between two statements): nothing will ever answer.
      if (this.closedError) done(this.closedError);
    });
  }

  /** Startup; the tunnel's bearer token already authenticated us, so the gateway answers AuthenticationOk. */
  async start(connection: string, notices: (n: PgError) => void): Promise<void> {
    const ready = this.next((message, done) => {
      if (message.name === 'readyForQuery') done();
      else if (message.name === 'error') done(new PgServerError(toPgError(message)));
      else if (message.name === 'notice') notices(toPgError(message));
    });
    this.stream.write(
      serialize.startup({
        user: 'hoop',
        database: connection,
        application_name: 'hoopctl exec',
        client_encoding: 'UTF8',
      }),
    );
    await ready;
  }

  /** Run one statement. Resolves at ReadyForQuery with the first error, if any. */
  async query(sql: string, handlers: QueryHandlers): Promise<PgError | undefined> {
    let failure: PgError | undefined;
    const finished = this.next((message, done) => {
      switch (message.name) {
        case 'rowDescription':
          handlers.onColumns(
            (message as unknown as { fields: { name: string; dataTypeID: number }[] }).fields.map((f) => ({
              name: f.name,
              typeId: f.dataTypeID,
            })),
          );
          return;
        case 'dataRow':
          if (handlers.onRow((message as unknown as { fields: (string | null)[] }).fields) === false)
            this.stream.pause();
          return;
        case 'commandComplete':
          handlers.onComplete((message as unknown as { text: string }).text);
          return;
        case 'notice':
          handlers.onNotice(toPgError(message));
          return;
        case 'error':
          failure ??= toPgError(message);
          return;
        case 'copyInResponse':
          // exec has no data to send: end the COPY so the statement finishes with a clear error.
          this.stream.write(serialize.copyFail('hoopctl exec does not send COPY FROM STDIN data'));
          return;
        case 'readyForQuery':
          done();
          return;
        default:
          return;
      }
    });
    if (!this.closedError) this.stream.write(serialize.query(sql));
    try {
      await finished;
    } catch (err) {
      // The gateway ended the session after saying why (a FATAL ErrorResponse): report that.
      if (failure ?? this.fatal) return failure ?? this.fatal;
      throw err;
    }
    return failure;
  }

  resume(): void {
    this.stream.resume();
  }

  async end(): Promise<void> {
    this.stream.end(serialize.end());
    await Promise.race([this.parsing.catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
    this.stream.destroy();
  }
}

export class PgServerError extends Error {
  constructor(readonly error: PgError) {
    super(error.message);
  }
}

function toPgError(message: BackendMessage): PgError {
  const m = message as unknown as Record<string, string | undefined>;
  return {
    severity: m.severity ?? 'ERROR',
    code: m.code ?? '',
    message: m.message ?? '',
    detail: m.detail,
    hint: m.hint,
    routine: m.routine,
  };
}
