/**
 * What the gateway's data path tells the metrics, as one small interface: every method is synchronous,
 * cheap (a counter increment or a histogram bucket) and takes only bounded labels — connection names
 * (from the configuration), statement classes, decisions, failure reasons. Never statement text; the
 * subject only when the operator asked for it (`diagnostics.metrics_subjects`).
 *
 * The relay, the gate, the audit log and the approvals service call these methods (one line each);
 * prometheus.ts implements them, `noMetrics` stands in when no diagnostics listener is configured.
 * State that already exists elsewhere (open sessions, pending approvals) is not counted here twice:
 * it is read when /metrics is scraped (see `MetricSources`).
 */

/** The raw socket of a tunnel (TLS or TCP): bytes on the wire are read from it at scrape time. */
export interface MeteredSocket {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  once(event: 'close', listener: () => void): unknown;
}

export type ApprovalEvent = 'requested' | 'approved' | 'rejected' | 'expired' | 'withdrawn' | 'used';

export interface GatewayMetrics {
  // --- tunnels and sessions (transport, session) ------------------------------------------------------
  /** An upgraded tunnel socket: its bytes are counted until it closes. */
  tunnelSocket(socket: MeteredSocket): void;
  /** A tunnel was accepted (a WebSocket is open); `closed` when it ends. */
  tunnelOpened(): void;
  tunnelClosed(): void;
  /** A tunnel upgrade was refused before it became a session (e.g. `draining`). */
  tunnelRefused(reason: string): void;
  /** A session passed its handshake and the upstream login: it is relaying now. */
  sessionOpened(connection: string): void;

  // --- statements (gate) ------------------------------------------------------------------------------
  /** One statement's decision, as its `statement` record says (class null: not understood). */
  statement(connection: string, statementClass: string | null, decision: string, subject?: string): void;
  /** How long the gate held one client message (classify, policy, approval, durable record). */
  gateDuration(phase: string, seconds: number): void;

  // --- audit log --------------------------------------------------------------------------------------
  /** One record appended (durable, or failed): its type and the time its writer waited. */
  auditAppended(type: string, seconds: number, failed: boolean): void;
  /** One group commit: how many records, how long the store took, whether it failed. */
  auditCommitted(records: number, seconds: number, failed: boolean): void;
  /** The newest sequence number this replica's chain reached. */
  chainHead(seq: number): void;

  // --- approvals --------------------------------------------------------------------------------------
  /** An approval changed state; decided ones give the time from request to decision. */
  approval(event: ApprovalEvent, decisionSeconds?: number): void;

  // --- upstream and authentication --------------------------------------------------------------------
  upstreamConnected(connection: string, seconds: number): void;
  /** `code` is the SQLSTATE or a short reason; only its class (first two characters) becomes a label. */
  upstreamFailed(connection: string, code: string | undefined): void;
  /** A refused authentication: token (AuthError reasons), `no_access`, `handshake`. */
  authFailed(reason: string): void;
}

/** Read at scrape time: state that other modules already keep. */
export interface MetricSources {
  /** Open sessions by connection name. */
  sessionsByConnection?(): Map<string, number>;
  /** Approval requests pending now (all replicas: the store is shared). */
  approvalsPending?(): Promise<number>;
  /** Readiness, and whether the gateway is draining. */
  ready?(): boolean;
  draining?(): boolean;
}

/** Metrics that go nowhere: the data path calls the same methods when no diagnostics listener is set. */
export const noMetrics: GatewayMetrics = {
  tunnelSocket: () => {},
  tunnelOpened: () => {},
  tunnelClosed: () => {},
  tunnelRefused: () => {},
  sessionOpened: () => {},
  statement: () => {},
  gateDuration: () => {},
  auditAppended: () => {},
  auditCommitted: () => {},
  chainHead: () => {},
  approval: () => {},
  upstreamConnected: () => {},
  upstreamFailed: () => {},
  authFailed: () => {},
};

/** Seconds since a `performance.now()` reading. */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
