/**
 * The open MCP sessions of this gateway: each one the SDK's Streamable HTTP transport and server, the
 * identity that opened it, and its database sessions. Sessions unused for `mcp.idle_timeout` are
 * closed; an identity keeps at most `mcp.max_sessions`, the least recently used closing first.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';
import { DatabaseSessions, type SessionOpener } from './db-sessions.js';
import { createSessionServer, type RequestAuth, type ServerDeps } from './server.js';

export interface SessionsDeps extends ServerDeps {
  mcp: McpConfig;
  openSession: SessionOpener;
}

export interface OpenOptions {
  /** x-hoop-mcp-connection, already checked. */
  pinned?: string;
  transport: McpClientInfo['transport'];
}

export const sameIdentity = (
  a: Pick<Identity, 'issuer' | 'subject'>,
  b: Pick<Identity, 'issuer' | 'subject'>,
) => a.issuer === b.issuer && a.subject === b.subject;

export class McpSession {
  id: string | undefined;
  closed = false;
  lastUsed = Date.now();
  readonly owner: Pick<Identity, 'issuer' | 'subject'>;
  readonly transport: StreamableHTTPServerTransport;
  readonly databases: DatabaseSessions;
  private readonly server: Server;
  /** The identity and address of the request this session serves now (for the sessions it opens). */
  private current: RequestAuth;

  constructor(deps: SessionsDeps, opener: RequestAuth, options: OpenOptions, registry: McpSessionRegistry) {
    this.owner = { issuer: opener.identity.issuer, subject: opener.identity.subject };
    this.current = opener;
    const client = (): McpClientInfo => this.client(options.transport);
    this.databases = new DatabaseSessions(deps.openSession, () => ({ ...this.current, mcp: client() }));
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => registry.register(id, this),
      onsessionclosed: () => registry.close(this),
      maxRequestBodySize: 2 * 1024 * 1024,
    });
    // Set before connecting: the SDK chains its own close handling after it.
    this.transport.onclose = () => registry.close(this);
    this.server = createSessionServer(deps, { pinned: options.pinned, sessions: this.databases, client });
  }

  connect(): Promise<void> {
    return this.server.connect(this.transport);
  }

  /** A request of the owner arrived: it is the one the session now serves. */
  serve(auth: RequestAuth): void {
    this.current = auth;
    this.lastUsed = Date.now();
  }

  private client(transport: McpClientInfo['transport']): McpClientInfo {
    const info = this.server.getClientVersion();
    return {
      name: info?.name ?? 'unknown',
      version: info?.version ?? 'unknown',
      session: this.id ?? '',
      transport,
    };
  }
}

export class McpSessionRegistry {
  private readonly byId = new Map<string, McpSession>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly deps: SessionsDeps) {
    const { idle_timeout } = deps.mcp;
    this.sweep = setInterval(() => this.closeIdle(), Math.max(1000, Math.min(60_000, idle_timeout / 2)));
    this.sweep.unref();
  }

  /** A new session for this identity (registered once the SDK has initialized it). */
  async open(opener: RequestAuth, options: OpenOptions): Promise<McpSession> {
    this.makeRoom(opener.identity);
    const session = new McpSession(this.deps, opener, options, this);
    await session.connect();
    return session;
  }

  register(id: string, session: McpSession): void {
    session.id = id;
    this.byId.set(id, session);
  }

  /** The session with this id if `identity` owns it: anyone else's is answered as a missing one. */
  find(id: string, identity: Identity): McpSession | undefined {
    const session = this.byId.get(id);
    return session && sameIdentity(session.owner, identity) ? session : undefined;
  }

  close(session: McpSession): void {
    if (session.closed) return;
    session.closed = true;
    if (session.id) this.byId.delete(session.id);
    session.databases.closeAll();
    void session.transport.close().catch(() => undefined);
  }

  closeAll(): void {
    clearInterval(this.sweep);
    for (const s of [...this.byId.values()]) this.close(s);
  }

  private closeIdle(): void {
    const idleSince = Date.now() - this.deps.mcp.idle_timeout;
    for (const s of [...this.byId.values()]) if (s.lastUsed < idleSince) this.close(s);
  }

  /** Room for one more session of this identity: the least recently used ones go first. */
  private makeRoom(identity: Identity): void {
    const mine = [...this.byId.values()].filter((s) => sameIdentity(s.owner, identity));
    mine.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const s of mine.slice(0, Math.max(0, mine.length - this.deps.mcp.max_sessions + 1))) this.close(s);
  }
}
