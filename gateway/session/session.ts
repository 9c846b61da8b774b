/**
 * One tunnelled client connection from start to end: the client's handshake, the upstream login,
 * the gateway-made BackendKeyData, then the relay. Also answers CancelRequests that arrive through
 * a tunnel, mapping the gateway's key to the upstream one.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { ConnectionConfig } from '../../src/shared/config/schema.js';
import type { Identity } from '../../src/shared/identity.js';
import type { McpClientInfo } from '../../src/shared/mcp.js';
import type { SessionGate } from '../contracts/gate.js';
import { OWN_QUERY_MARK } from '../contracts/own-query.js';
import type { ClientLogin, SessionInfo } from '../contracts/session.js';
import {
  type BackendKey,
  backendKeyData,
  errorResponse,
  parameterStatus,
  readyForQuery,
} from '../pgwire/backend.js';
import type { StartupJudgement, StartupSetting } from '../policy/startup.js';
import type { SessionStart } from '../sql/session-names.js';
import { normalizeSettingValue } from '../sql/settings.js';
import {
  connectUpstream,
  queryUpstream,
  sendUpstreamCancel,
  type UpstreamConnection,
  type UpstreamTarget,
} from '../transport/upstream.js';
import { unsafeSetting } from './protocol.js';
import { Relay } from './relay.js';
import type { TransactionListener } from './session-model.js';
import { acceptStartup, refuseStartup } from './startup.js';

export type { SessionInfo } from '../contracts/session.js';

/** What the gate needs of the session besides who it is: its starting settings and its transactions. */
export interface SessionState {
  /** The upstream session's settings at start, and the ones the gateway holds (read after login). */
  start: SessionStart;
  /** The session model's transaction events (begin, commit, rollback, savepoints), from the server's replies. */
  onTransaction(listener: TransactionListener): void;
}

export interface SessionHooks {
  /**
   * Judge the client's startup parameters as policy judges SET; a refusal ends the connection with a
   * FATAL naming the parameter and the rule. Without it, startup parameters are not passed on.
   */
  startup?(info: SessionInfo, settings: readonly StartupSetting[]): StartupJudgement;
  /**
   * Settings the upstream session starts with besides the client's (a session running an approved
   * statement gets the search_path it was filed under). Not judged: the reviewer saw them.
   */
  runSettings?(info: SessionInfo): Promise<Record<string, string>>;
  /** The session is authenticated and the upstream is ready: build its gate (records session.started). */
  openGate(info: SessionInfo, session: SessionState): Promise<SessionGate>;
  /** The session ended (records session.ended). */
  closed(info: SessionInfo, reason: string): void;
  /** The local one-time password was wrong, or the handshake failed (records auth.failed). */
  refused(info: SessionInfo, reason: string): void;
  /** The upstream login finished (metrics): how long it took, or the error (with its SQLSTATE) it failed with. */
  upstream?(info: SessionInfo, seconds: number, error?: Error & { sqlstate?: string }): void;
}

export interface SessionSettings {
  maxMessageBytes: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
  /** The longest the client's startup handshake in a tunnel may take, all of it (default 30 s). */
  loginTimeoutMs?: number;
  /** Where and how to log in upstream for this identity (agents get a statement_timeout, say). */
  target: (connection: ConnectionConfig, identity: Identity) => UpstreamTarget;
}

interface LiveSession {
  info: SessionInfo;
  relay: Relay;
  upstreamKey: BackendKey;
  target: UpstreamTarget;
}

/** Every open session, and the cancel keys the gateway handed out for them. */
export class SessionRegistry {
  private readonly byId = new Map<string, LiveSession>();
  private readonly byCancelKey = new Map<string, LiveSession>();

  add(session: LiveSession, key: string): void {
    this.byId.set(session.info.id, session);
    this.byCancelKey.set(key, session);
  }
  remove(id: string, key: string): void {
    this.byId.delete(id);
    this.byCancelKey.delete(key);
  }
  byKey(key: string): LiveSession | undefined {
    return this.byCancelKey.get(key);
  }
  all(): LiveSession[] {
    return [...this.byId.values()];
  }
  get size(): number {
    return this.byId.size;
  }
  /** End every open session of this identity (issuer and subject): revocation takes effect at once. */
  terminateSubject(issuer: string, subject: string, message: string): number {
    let count = 0;
    for (const s of this.byId.values()) {
      if (s.info.identity.subject === subject && s.info.identity.issuer === issuer) {
        s.relay.terminate({ code: '28000', message });
        count++;
      }
    }
    return count;
  }
}

/** What name resolution needs to know about the session before the client's first statement. */
const SESSION_START_SQL = `${OWN_QUERY_MARK}SELECT pg_catalog.current_setting('search_path'), pg_catalog.current_setting('role'),
  pg_catalog.current_setting('session_authorization'), pg_catalog.current_setting('default_transaction_read_only'),
  pg_catalog.current_setting('transaction_read_only'), current_user`;

/** Read the session's starting settings (role and database defaults and startup parameters applied). */
async function sessionStart(upstream: UpstreamConnection, held: Map<string, string>): Promise<SessionStart> {
  const [row] = await queryUpstream(upstream, SESSION_START_SQL);
  const [searchPath, role, sessionUser, readOnly, txReadOnly, user] = row ?? [];
  const resetValues = new Map<string, string>();
  if (searchPath != null) resetValues.set('search_path', normalizeSettingValue('search_path', searchPath));
  resetValues.set('role', role ?? 'none');
  if (sessionUser != null) resetValues.set('session_authorization', sessionUser);
  if (readOnly != null) resetValues.set('default_transaction_read_only', readOnly);
  if (txReadOnly != null) resetValues.set('transaction_read_only', txReadOnly);
  return { resetValues, user: user ?? sessionUser ?? '', held };
}

/** A startup parameter policy refused: the FATAL names it and the rule (nothing is dropped without a word). */
function refuseParameter(client: Duplex, refused: NonNullable<StartupJudgement['refused']>): string {
  const { setting, decision } = refused;
  const by = `rule "${decision.rule}"${decision.policy ? ` of policy "${decision.policy}"` : ''}`;
  client.end(
    errorResponse({
      severity: 'FATAL',
      code: '42501',
      message: `hoop: startup parameter "${setting.name}" refused by ${by}`,
      detail: `${setting.name} = ${setting.value}: ${decision.reason}`,
      hint: 'Connect without it, or ask for a policy that allows it (the same rules as SET).',
      routine: 'hoop_policy_denied',
    }),
  );
  return `startup parameter ${setting.name} refused by ${by}: ${decision.reason}`;
}

const cancelKey = (processId: number, secret: Buffer) => `${processId}:${secret.toString('hex')}`;

/**
 * A CancelRequest: withdraw the session's statement still waiting at the gateway (an approval), or
 * cancel the one running upstream. `may` says whether the sender may cancel that session at all: a
 * guessed key from someone else does nothing, and the sender learns nothing either way.
 */
export async function cancelSession(
  registry: SessionRegistry,
  processId: number,
  secretKey: Buffer,
  may: (info: SessionInfo) => boolean,
): Promise<void> {
  const session = registry.byKey(cancelKey(processId, secretKey));
  if (!session || !may(session.info)) return;
  if (!session.relay.cancelPendingDecision()) {
    await sendUpstreamCancel(session.target, session.upstreamKey).catch(() => {});
  }
}

export async function runSession(
  client: Duplex,
  meta: {
    identity: Identity;
    connection: ConnectionConfig;
    source: string;
    client: string;
    localPassword?: string;
    sessionId?: string;
    approval?: string;
    approvalWait?: string;
    mcp?: McpClientInfo;
    /** The handshake, when the listener already did it (the native listener checks the token in it). */
    login?: ClientLogin;
    nativeUser?: string;
    /** A tunnel still counted as unauthenticated: its handshake's deadline, and the call once done. */
    pending?: { deadline: number; loggedIn(): void };
  },
  settings: SessionSettings,
  hooks: SessionHooks,
  registry: SessionRegistry,
): Promise<void> {
  const info: SessionInfo = {
    id: meta.sessionId ?? randomUUID(),
    identity: meta.identity,
    connection: meta.connection,
    source: meta.source,
    client: meta.client,
    approval: meta.approval,
    approvalWait: meta.approvalWait,
    mcp: meta.mcp,
    nativeUser: meta.nativeUser,
    startedAt: Date.now(),
  };
  let login = meta.login;
  if (!login) {
    let handshake: Awaited<ReturnType<typeof acceptStartup>>;
    try {
      handshake = await acceptStartup(client, {
        maxMessageBytes: settings.maxMessageBytes,
        localPassword: meta.localPassword,
        timeoutMs: settings.loginTimeoutMs,
        deadline: meta.pending?.deadline,
      });
    } catch (err) {
      hooks.refused(info, (err as Error).message);
      refuseStartup(client, err as Error);
      return;
    }
    if (handshake.result.kind === 'cancel') {
      // Only the session's own identity may cancel it through a tunnel.
      const { processId, secretKey } = handshake.result;
      await cancelSession(
        registry,
        processId,
        secretKey,
        // Issuer and subject: a colliding subject of another issuer cancels nothing.
        (s) => s.identity.subject === meta.identity.subject && s.identity.issuer === meta.identity.issuer,
      );
      client.end();
      return;
    }
    login = { ...handshake.result, leftover: handshake.leftover, late: handshake.late };
  }
  meta.pending?.loggedIn();
  if (login.startup.application_name) info.applicationName = login.startup.application_name;

  const judged = hooks.startup?.(info, login.settings) ?? {
    upstream: { client_encoding: 'UTF8' },
    held: new Map<string, string>(),
  };
  if (judged.refused) {
    hooks.refused(info, refuseParameter(client, judged.refused));
    return;
  }
  if (info.approval && hooks.runSettings) {
    try {
      judged.upstream = { ...judged.upstream, ...(await hooks.runSettings(info)) };
    } catch (err) {
      client.end(
        errorResponse({ severity: 'FATAL', code: '58030', message: `hoop: ${(err as Error).message}` }),
      );
      hooks.refused(info, (err as Error).message);
      return;
    }
  }
  info.parameters = judged.upstream;

  const target = settings.target(meta.connection, meta.identity);
  let upstream: Awaited<ReturnType<typeof connectUpstream>>;
  let start: SessionStart;
  let opened: UpstreamConnection | undefined;
  const connectStarted = performance.now();
  try {
    upstream = opened = await connectUpstream(target, judged.upstream);
    hooks.upstream?.(info, (performance.now() - connectStarted) / 1000);
    start = await sessionStart(upstream, judged.held);
  } catch (err) {
    const e = err as Error & { sqlstate?: string };
    if (opened) opened.socket.destroy();
    else hooks.upstream?.(info, (performance.now() - connectStarted) / 1000, e);
    client.end(
      errorResponse({ severity: 'FATAL', code: e.sqlstate ?? '08006', message: `hoop: ${e.message}` }),
    );
    hooks.refused(info, e.message);
    return;
  }

  // The gateway parses SQL as the server will only if it reads UTF-8 with standard-conforming strings.
  for (const [name, value] of upstream.parameters) {
    const unsafe = unsafeSetting(name, value);
    if (!unsafe) continue;
    upstream.socket.destroy();
    client.end(errorResponse({ severity: 'FATAL', code: '42501', message: `hoop: ${unsafe}` }));
    hooks.refused(info, unsafe);
    return;
  }

  // The gate subscribes now; the relay's session model (made below) publishes.
  const transactionListeners: TransactionListener[] = [];
  let gate: SessionGate;
  try {
    gate = await hooks.openGate(info, {
      start,
      onTransaction: (listener) => transactionListeners.push(listener),
    });
  } catch (err) {
    upstream.socket.destroy();
    client.end(
      errorResponse({ severity: 'FATAL', code: '58000', message: `hoop: ${(err as Error).message}` }),
    );
    return;
  }

  // The client gets our own key; the upstream key never leaves the gateway.
  const processId = randomBytes(4).readInt32BE(0) & 0x7fffffff;
  const secret = randomBytes(4);
  const key = cancelKey(processId, secret);
  const hello: Buffer[] = [];
  for (const [name, value] of upstream.parameters) hello.push(parameterStatus(name, value));
  hello.push(backendKeyData(processId, secret.readInt32BE(0)));
  hello.push(readyForQuery(upstream.status));
  client.write(Buffer.concat(hello));

  const relay = new Relay(
    client,
    upstream.socket,
    gate,
    {
      maxMessageBytes: settings.maxMessageBytes,
      idleTimeoutMs: settings.idleTimeoutMs,
      maxSessionMs: settings.maxSessionMs,
      upstreamReads: upstream.reads,
    },
    upstream.status,
  );
  relay.core.model.onTransaction((event) => {
    for (const listener of transactionListeners) listener(event);
  });
  registry.add({ info, relay, upstreamKey: upstream.backendKey, target }, key);
  relay.onEnd((reason) => {
    registry.remove(info.id, key);
    hooks.closed(info, reason);
  });
  const pending = login.late ? Buffer.concat([login.leftover, login.late()]) : login.leftover;
  relay.start(pending, upstream.leftover);
}
