/**
 * The gateway's session path in this process, for tests that must look inside it: the real handshake,
 * upstream login, relay (protocol core + I/O shell), statement gate, policy engine and audit log (SQLite
 * store, group commit) against a real PostgreSQL — everything `hoop-gateway` runs for a session except
 * the HTTPS/WebSocket tunnel and token verification, which do not touch session state. A test reaches
 * the relay's session model through the registry: that is the one thing the real gateway keeps private.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { type AuditLog, createAuditLog } from '../../gateway/audit/log.js';
import { localGatewayConfig } from '../../gateway/dev/config.js';
import { duplexPair } from '../../gateway/mcp/duplex.js';
import { createPolicyEngine } from '../../gateway/policy/engine.js';
import { createStatementGate } from '../../gateway/session/gate/index.js';
import { runSession, SessionRegistry } from '../../gateway/session/session.js';
import { loadSqlParser } from '../../gateway/sql/parser.js';
import { openStore } from '../../gateway/store/index.js';
import type { Store } from '../../gateway/store/types.js';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import { parseConfig } from '../../src/shared/config/load.js';
import type { Identity } from '../../src/shared/identity.js';
import { ALLOW_ALL_POLICIES } from './clients.js';
import type { PgServer } from './postgres.js';

export interface SessionRig {
  port: number;
  registry: SessionRegistry;
  /** Every audit record appended, in order (statement records, results, blocked ...). */
  records: AuditRecordInput[];
  /** A session over an in-memory stream pair, as an MCP session has: the client's side. */
  inMemory(): Duplex;
  close(): Promise<void>;
}

export const RIG_IDENTITY: Identity = {
  issuer: 'https://idp.test',
  subject: 'alice',
  name: 'alice@example.com',
  groups: ['engineering'],
  kind: 'user',
};

export async function startSessionRig(
  pg: PgServer,
  options: { policies?: string; database?: string } = {},
): Promise<SessionRig> {
  await loadSqlParser();
  const config = parseConfig(
    localGatewayConfig({
      port: 1,
      issuer: 'https://idp.test',
      audience: 'https://gateway.test',
      dbPort: pg.port,
      password: { env: 'UNUSED' },
      policies: options.policies ?? ALLOW_ALL_POLICIES,
    }),
    'rig.yaml',
  );
  const engine = createPolicyEngine(config);
  const dir = mkdtempSync(join(tmpdir(), 'hoop-rig-'));
  const store: Store = await openStore({ path: dir } as never, { baseDir: dir });
  const log: AuditLog = await createAuditLog(store);
  const records: AuditRecordInput[] = [];
  const recording = {
    append(input: AuditRecordInput) {
      records.push(input);
      return log.append(input);
    },
  };
  const registry = new SessionRegistry();
  const connection = config.connections[0]!;
  const serve = (stream: Duplex) => {
    void runSession(
      stream,
      { identity: RIG_IDENTITY, connection, source: '127.0.0.1', client: 'test' },
      {
        maxMessageBytes: 1 << 24,
        idleTimeoutMs: 0,
        maxSessionMs: 0,
        target: () => ({
          host: '127.0.0.1',
          port: pg.port,
          database: options.database ?? 'postgres',
          user: pg.user,
          password: pg.password,
          tls: { mode: 'disable' },
        }),
      },
      {
        openGate: async (info) =>
          createStatementGate(info, {
            engine,
            log: recording,
            failOpen: false,
            recordRows: 10,
            recordBytes: 4096,
            grants: () => [],
            revoked: () => false,
            onLogError: () => {},
          }),
        closed: () => {},
        refused: () => {},
      },
      registry,
    );
  };
  const server: Server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    registry,
    records,
    inMemory() {
      const [mine, theirs] = duplexPair();
      serve(theirs);
      return mine;
    },
    async close() {
      for (const s of registry.all()) s.relay.terminate({ code: '57P01', message: 'rig closing' });
      server.close();
      await log.close();
      await store.close();
    },
  };
}
