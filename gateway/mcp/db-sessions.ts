/**
 * An MCP session's database sessions: each is an ordinary gateway session (runSession, through the
 * same hook the tunnel uses) whose client is the in-process client of pg-client.ts, on an in-memory
 * stream. One per connection, opened when a tool first needs it and kept for the MCP session's life,
 * so a script's BEGIN in one call and COMMIT in the next behave as in psql. An approved statement runs
 * in a session of its own, opened for that approval (as `hoopctl exec --approval ID` does).
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { serialize } from 'pg-protocol';
import type { ConnectionConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';
import type { TunnelTarget } from '../transport/tunnel.js';
import { duplexPair } from './duplex.js';
import { InProcessPgClient } from './pg-client.js';

/** Starts a gateway session on a stream: the tunnel's own `onStream`. */
export type SessionOpener = (stream: Duplex, target: TunnelTarget) => void;

export interface SessionOwner {
  identity: Identity;
  source: string;
  mcp: McpClientInfo;
}

export class DatabaseSession {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly id: string,
    readonly client: InProcessPgClient,
    private readonly target: TunnelTarget,
    private readonly opener: SessionOpener,
  ) {}

  static async open(
    opener: SessionOpener,
    owner: SessionOwner,
    connection: ConnectionConfig,
    approval?: string,
  ): Promise<DatabaseSession> {
    const [mine, theirs] = duplexPair();
    const target: TunnelTarget = {
      identity: owner.identity,
      connection,
      source: owner.source,
      client: 'mcp',
      sessionId: randomUUID(),
      // A statement needing approval is filed and refused at once: the agent waits with its own tool.
      approvalWait: 'none',
      approval,
      mcp: owner.mcp,
    };
    opener(theirs, target);
    const client = new InProcessPgClient(mine);
    await client.start(connection.name, `mcp ${owner.mcp.name}`);
    return new DatabaseSession(target.sessionId, client, target, opener);
  }

  get closed(): boolean {
    return this.client.closed;
  }

  /** Run `work` when the calls before it are done: the protocol is one statement at a time. */
  exclusive<T>(work: (client: InProcessPgClient) => Promise<T>): Promise<T> {
    const next = this.queue.then(() => work(this.client));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Cancel what runs now, through a CancelRequest on a session of its own — the way psql cancels. */
  cancel(): void {
    const key = this.client.cancelKey;
    if (!key || this.closed) return;
    const [mine, theirs] = duplexPair();
    this.opener(theirs, { ...this.target, sessionId: randomUUID(), approval: undefined });
    mine.end(serialize.cancel(key.processId, key.secretKey));
    mine.resume();
  }

  end(): void {
    this.client.end();
  }
}

export class DatabaseSessions {
  private readonly byConnection = new Map<string, Promise<DatabaseSession>>();

  constructor(
    private readonly opener: SessionOpener,
    private readonly owner: () => SessionOwner,
  ) {}

  /** The session on this connection, opened (or reopened, after the gateway ended it) as needed. */
  async get(connection: ConnectionConfig): Promise<DatabaseSession> {
    const existing = this.byConnection.get(connection.name);
    if (existing) {
      const session = await existing.catch(() => undefined);
      if (session && !session.closed) return session;
    }
    const opening = DatabaseSession.open(this.opener, this.owner(), connection);
    this.byConnection.set(connection.name, opening);
    opening.catch(() => this.byConnection.delete(connection.name));
    return opening;
  }

  /** A session of its own for running the statement this approval approved; end it afterwards. */
  forApproval(connection: ConnectionConfig, approval: string): Promise<DatabaseSession> {
    return DatabaseSession.open(this.opener, this.owner(), connection, approval);
  }

  closeAll(): void {
    for (const opening of this.byConnection.values()) {
      opening.then((s) => s.end()).catch(() => undefined);
    }
    this.byConnection.clear();
  }
}
