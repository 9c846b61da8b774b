/**
 * The client side of an MCP session's database session: a small PostgreSQL-protocol client speaking
 * to an ordinary gateway session (runSession) over an in-memory stream, exactly as `hoopctl exec`
 * speaks to one over a tunnel. Everything a statement meets — gate, policy, approvals, masking, the
 * write-ahead record — is the gateway session's; this side only asks and collects the answer.
 *
 * Statements use the extended protocol (Parse, Bind, Describe, Execute, Sync), so values are bound
 * parameters and the row limit is the Execute's own: the database stops at the limit.
 */
import type { Duplex } from 'node:stream';
import { parse, serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { typeName } from './pg-types.js';

export interface ServerMessage {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  routine?: string;
}

export interface ColumnInfo {
  name: string;
  type: string;
}

export interface StatementResult {
  /** CommandComplete tag ("SELECT 3", "INSERT 0 1"); null when the row limit cut the result off. */
  command: string | null;
  columns: ColumnInfo[];
  rows: (string | null)[][];
  /** Bytes of the values returned (UTF-8). */
  bytes: number;
  /** More rows (or bytes) were there than the limits let through. */
  truncated: boolean;
}

export type RunOutcome =
  | { ok: true; result: StatementResult; notices: ServerMessage[] }
  | { ok: false; error: ServerMessage; notices: ServerMessage[] };

export interface RunLimits {
  maxRows: number;
  maxBytes: number;
}

/** The gateway-made cancel key of the session (BackendKeyData). */
export interface CancelKey {
  processId: number;
  secretKey: number;
}

type Listener = (message: BackendMessage) => void;

/** Thrown when the session cannot start or has ended (the gateway's FATAL, when it sent one). */
export class SessionClosed extends Error {
  constructor(readonly fatal?: ServerMessage) {
    super(fatal?.message ?? 'the gateway session ended');
  }
}

export class InProcessPgClient {
  private listener: Listener | undefined;
  private ended: SessionClosed | undefined;
  private fatal: ServerMessage | undefined;
  cancelKey: CancelKey | undefined;

  constructor(private readonly stream: Duplex) {
    void parse(stream, (message) => {
      if (message.name === 'error' && field(message, 'severity') === 'FATAL')
        this.fatal ??= toServer(message);
      if (message.name === 'backendKeyData') {
        const m = message as unknown as { processID: number; secretKey: number };
        this.cancelKey = { processId: m.processID, secretKey: m.secretKey };
      }
      this.listener?.(message);
    }).catch(() => this.close());
    stream.on('end', () => this.close());
    stream.on('close', () => this.close());
    stream.on('error', () => this.close());
  }

  get closed(): boolean {
    return this.ended !== undefined;
  }

  private close(): void {
    if (this.ended) return;
    this.ended = new SessionClosed(this.fatal);
    this.listener?.({ name: 'error', length: -1 } as BackendMessage);
  }

  /** Collect messages until ReadyForQuery; `onMessage` sees every other message. */
  private untilReady(onMessage: Listener): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (err?: Error) => {
        this.listener = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.listener = (message) => {
        if (message.name === 'error' && message.length === -1) finish(this.ended);
        else if (message.name === 'readyForQuery') finish();
        else onMessage(message);
      };
      if (this.ended) finish(this.ended);
    });
  }

  /** Startup: the gateway authenticated the identity already and answers AuthenticationOk. */
  async start(database: string, applicationName: string): Promise<void> {
    let refused: ServerMessage | undefined;
    const ready = this.untilReady((message) => {
      if (message.name === 'error') refused ??= toServer(message);
    });
    this.stream.write(
      serialize.startup({
        user: 'mcp',
        database,
        application_name: applicationName.slice(0, 63),
        client_encoding: 'UTF8',
      }),
    );
    try {
      await ready;
    } catch {
      throw new SessionClosed(refused ?? this.fatal);
    }
  }

  /** Run one statement with bound (text) parameters; resolves at ReadyForQuery. */
  async run(sql: string, params: readonly (string | null)[], limits: RunLimits): Promise<RunOutcome> {
    const collector = new ResultCollector(limits);
    const notices: ServerMessage[] = [];
    let failure: ServerMessage | undefined;
    const done = this.untilReady((message) => {
      switch (message.name) {
        case 'error':
          failure ??= toServer(message);
          return;
        case 'notice':
          notices.push(toServer(message));
          return;
        case 'copyInResponse':
          this.stream.write(serialize.copyFail('an MCP query sends no COPY data'));
          return;
        default:
          collector.take(message);
      }
    });
    if (!this.ended) {
      this.stream.write(
        Buffer.concat([
          serialize.parse({ text: sql }),
          serialize.bind({ values: [...params] }),
          serialize.describe({ type: 'P' }),
          // One row past the limit tells a cut-off result from one that just fits.
          serialize.execute({ rows: Math.min(limits.maxRows + 1, 0x7fffffff) }),
          serialize.sync(),
        ]),
      );
    }
    try {
      await done;
    } catch (err) {
      const fatal = failure ?? this.fatal;
      if (fatal) return { ok: false, error: fatal, notices };
      throw err;
    }
    if (failure) return { ok: false, error: failure, notices };
    return { ok: true, result: collector.result(), notices };
  }

  /** Terminate the session politely. */
  end(): void {
    if (this.ended) return;
    this.stream.end(serialize.end());
  }
}

/** Builds one statement's result from RowDescription, DataRow and the end message, within the limits. */
class ResultCollector {
  private columns: ColumnInfo[] = [];
  private readonly rows: (string | null)[][] = [];
  private bytes = 0;
  private truncated = false;
  private command: string | null = null;

  constructor(private readonly limits: RunLimits) {}

  take(message: BackendMessage): void {
    switch (message.name) {
      case 'rowDescription':
        this.columns = (message as unknown as { fields: { name: string; dataTypeID: number }[] }).fields.map(
          (f) => ({ name: f.name, type: typeName(f.dataTypeID) }),
        );
        return;
      case 'copyOutResponse':
        this.columns = [{ name: 'copy', type: 'text' }];
        return;
      case 'dataRow':
        this.add((message as unknown as { fields: (string | null)[] }).fields);
        return;
      case 'copyData':
        this.add([(message as unknown as { chunk: Buffer }).chunk.toString('utf8').replace(/\n$/, '')]);
        return;
      case 'commandComplete':
        this.command = (message as unknown as { text: string }).text;
        return;
      case 'portalSuspended':
        this.truncated = true;
        return;
    }
  }

  private add(values: (string | null)[]): void {
    if (this.truncated) return;
    const size = values.reduce((sum, v) => sum + (v === null ? 0 : Buffer.byteLength(v)), 0);
    if (this.rows.length >= this.limits.maxRows || this.bytes + size > this.limits.maxBytes) {
      this.truncated = true;
      return;
    }
    this.rows.push(values);
    this.bytes += size;
  }

  result(): StatementResult {
    return {
      command: this.command,
      columns: this.columns,
      rows: this.rows,
      bytes: this.bytes,
      truncated: this.truncated,
    };
  }
}

function field(message: BackendMessage, name: string): string | undefined {
  return (message as unknown as Record<string, string | undefined>)[name];
}

function toServer(message: BackendMessage): ServerMessage {
  return {
    severity: field(message, 'severity') ?? 'ERROR',
    code: field(message, 'code') ?? '',
    message: field(message, 'message') ?? '',
    ...(field(message, 'detail') ? { detail: field(message, 'detail') } : {}),
    ...(field(message, 'hint') ? { hint: field(message, 'hint') } : {}),
    ...(field(message, 'routine') ? { routine: field(message, 'routine') } : {}),
  };
}
