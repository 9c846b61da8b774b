/**
 * GatewayMetrics in Prometheus text format, with prom-client (pinned; its engines accept Node 20): the
 * de-facto Node client, which also brings the process and event-loop metrics (`collectDefaultMetrics`) an
 * operator expects next to ours. Names and labels are documented in docs/metrics.md — keep them together.
 *
 * Cardinality is bounded here, not trusted to callers: a label value outside its known set (a connection
 * not in the configuration, an unexpected reason) becomes `other`; subjects, when enabled, are capped.
 */
import { hostname } from 'node:os';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { RECORD_TYPES } from '../../src/shared/audit.js';
import { STATEMENT_CLASSES } from '../../src/shared/statement.js';
import type { ApprovalEvent, GatewayMetrics, MeteredSocket, MetricSources } from './metrics.js';

export interface PrometheusOptions {
  /** Connection names from the configuration: the only values the `connection` label takes. */
  connections: string[];
  version: string;
  /** This replica's name in `hoop_audit_chain_head{replica}`. */
  replica?: string;
  /** Label statements with the identity's subject too (a separate metric; off by default). */
  subjects?: boolean;
  /** Most distinct subjects kept before new ones count as `other`. */
  maxSubjects?: number;
}

export interface PrometheusMetrics {
  metrics: GatewayMetrics;
  /** Register the scrape-time sources (sessions, approvals, readiness) once they exist. */
  watch(sources: MetricSources): void;
  /** The exposition: Prometheus text format 0.0.4. */
  render(): Promise<string>;
  readonly contentType: string;
}

const AUTH_REASONS = new Set([
  'malformed',
  'unknown_issuer',
  'alg_not_allowed',
  'unknown_key',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'wrong_audience',
  'missing_claim',
  'bound_claims',
  'issuer_unreachable',
  'revoked',
  'no_access',
  'handshake',
  'missing_token',
]);
const DECISIONS = new Set(['allow', 'deny', 'approve']);
const CLASSES = new Set<string>(STATEMENT_CLASSES);
const PHASES = new Set(['query', 'parse', 'execute']);
const TYPES = new Set<string>(RECORD_TYPES);

/** Latencies of work done in the gateway: 50 µs to 10 s. */
const FAST_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];
/** Human decisions: a second to a day. */
const DECISION_BUCKETS = [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400];

export function createPrometheusMetrics(options: PrometheusOptions): PrometheusMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'hoop_' });
  const connections = new Set(options.connections);
  const connection = (name: string) => (connections.has(name) ? name : 'other');
  const known = (set: Set<string>, value: string | null | undefined) =>
    value && set.has(value) ? value : value === null ? 'none' : 'other';
  const registers = [registry];
  let sources: MetricSources = {};

  new Gauge({
    name: 'hoop_build_info',
    help: 'Always 1; the version label says which gateway this is.',
    labelNames: ['version'],
    registers,
  }).set({ version: options.version }, 1);

  // --- tunnels and sessions -----------------------------------------------------------------------
  const tunnelsOpened = new Counter({
    name: 'hoop_tunnels_opened_total',
    help: 'Tunnels accepted (WebSocket upgraded).',
    registers,
  });
  let tunnelsActive = 0;
  new Gauge({
    name: 'hoop_tunnels_active',
    help: 'Tunnels open now.',
    registers,
    collect() {
      this.set(tunnelsActive);
    },
  });
  const tunnelsRefused = new Counter({
    name: 'hoop_tunnels_refused_total',
    help: 'Tunnel upgrades refused before a session began, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const sessionsOpened = new Counter({
    name: 'hoop_sessions_opened_total',
    help: 'Sessions that passed the handshake and the upstream login.',
    labelNames: ['connection'],
    registers,
  });
  new Gauge({
    name: 'hoop_sessions_active',
    help: 'Sessions open now, by connection.',
    labelNames: ['connection'],
    registers,
    collect() {
      this.reset();
      for (const name of connections) this.set({ connection: name }, 0);
      for (const [name, count] of sources.sessionsByConnection?.() ?? []) {
        this.inc({ connection: connection(name) }, count);
      }
    },
  });

  // Bytes on the tunnels' sockets: live sockets are read at scrape time, closed ones were added up.
  const live = new Set<MeteredSocket>();
  let closedRead = 0;
  let closedWritten = 0;
  const sumOf = (key: 'bytesRead' | 'bytesWritten', closed: number) => {
    let total = closed;
    for (const socket of live) total += socket[key];
    return total;
  };
  new Counter({
    name: 'hoop_tunnel_received_bytes_total',
    help: 'Bytes received on tunnel sockets (WebSocket framing and TLS included).',
    registers,
    collect() {
      this.reset();
      this.inc(sumOf('bytesRead', closedRead));
    },
  });
  new Counter({
    name: 'hoop_tunnel_sent_bytes_total',
    help: 'Bytes sent on tunnel sockets (WebSocket framing and TLS included).',
    registers,
    collect() {
      this.reset();
      this.inc(sumOf('bytesWritten', closedWritten));
    },
  });

  // --- statements ----------------------------------------------------------------------------------
  const statements = new Counter({
    name: 'hoop_statements_total',
    help: 'Statements by connection, class and decision (one per statement record).',
    labelNames: ['connection', 'class', 'decision'],
    registers,
  });
  const subjectStatements = options.subjects
    ? new Counter({
        name: 'hoop_subject_statements_total',
        help: 'Statements by subject and connection (diagnostics.metrics_subjects: true).',
        labelNames: ['subject', 'connection'],
        registers,
      })
    : undefined;
  const subjectsSeen = new Set<string>();
  const maxSubjects = options.maxSubjects ?? 1000;
  const gate = new Histogram({
    name: 'hoop_gate_duration_seconds',
    help: 'Time a client message waited at the gate: classification, policy, approval and the durable record.',
    labelNames: ['phase'],
    buckets: FAST_BUCKETS,
    registers,
  });

  // --- audit log -----------------------------------------------------------------------------------
  const records = new Counter({
    name: 'hoop_audit_records_total',
    help: 'Audit records appended, by type and result (ok or failed).',
    labelNames: ['type', 'result'],
    registers,
  });
  const appendLatency = new Histogram({
    name: 'hoop_audit_append_duration_seconds',
    help: 'Time from appending a record to its commit (what a statement waits for its write-ahead record).',
    buckets: FAST_BUCKETS,
    registers,
  });
  const batchSize = new Histogram({
    name: 'hoop_audit_batch_records',
    help: 'Records per group commit.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000],
    registers,
  });
  const commitLatency = new Histogram({
    name: 'hoop_audit_commit_duration_seconds',
    help: 'Time the store took to commit one batch.',
    buckets: FAST_BUCKETS,
    registers,
  });
  const commitFailures = new Counter({
    name: 'hoop_audit_commit_failures_total',
    help: 'Group commits that failed (their statements were refused with 58030 unless fail_open).',
    registers,
  });
  const head = new Gauge({
    name: 'hoop_audit_chain_head',
    help: 'Newest sequence number of the audit chain written by this replica.',
    labelNames: ['replica'],
    registers,
  });
  const replica = options.replica ?? process.env.HOOP_REPLICA_ID ?? hostname();

  // --- approvals -----------------------------------------------------------------------------------
  new Gauge({
    name: 'hoop_approvals_pending',
    help: 'Approval requests waiting for a decision (all replicas: read from the shared store).',
    registers,
    async collect() {
      this.set((await sources.approvalsPending?.().catch(() => Number.NaN)) ?? 0);
    },
  });
  const approvals = new Counter({
    name: 'hoop_approvals_total',
    help: 'Approval requests by event: requested, approved, rejected, expired, withdrawn, used.',
    labelNames: ['event'],
    registers,
  });
  const decisionLatency = new Histogram({
    name: 'hoop_approval_decision_duration_seconds',
    help: 'Time from an approval request to its decision, by outcome.',
    labelNames: ['outcome'],
    buckets: DECISION_BUCKETS,
    registers,
  });

  // --- upstream and authentication -----------------------------------------------------------------
  const upstreamConnect = new Histogram({
    name: 'hoop_upstream_connect_duration_seconds',
    help: 'Time to connect and log in to the database (TCP, TLS, authentication).',
    labelNames: ['connection'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const upstreamErrors = new Counter({
    name: 'hoop_upstream_connect_errors_total',
    help: 'Failed database logins, by connection and SQLSTATE class (08 connection, 28 authentication, …).',
    labelNames: ['connection', 'sqlstate_class'],
    registers,
  });
  const authFailures = new Counter({
    name: 'hoop_auth_failures_total',
    help: 'Refused authentications by reason.',
    labelNames: ['reason'],
    registers,
  });

  new Gauge({
    name: 'hoop_ready',
    help: '1 when /readyz answers 200.',
    registers,
    collect() {
      this.set(sources.ready?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hoop_draining',
    help: '1 while the gateway drains after SIGTERM.',
    registers,
    collect() {
      this.set(sources.draining?.() ? 1 : 0);
    },
  });

  const approvalEvents = new Set<ApprovalEvent>([
    'requested',
    'approved',
    'rejected',
    'expired',
    'withdrawn',
    'used',
  ]);

  const metrics: GatewayMetrics = {
    tunnelSocket(socket) {
      live.add(socket);
      socket.once('close', () => {
        live.delete(socket);
        closedRead += socket.bytesRead;
        closedWritten += socket.bytesWritten;
      });
    },
    tunnelOpened() {
      tunnelsOpened.inc();
      tunnelsActive++;
    },
    tunnelClosed() {
      tunnelsActive--;
    },
    tunnelRefused(reason) {
      tunnelsRefused.inc({ reason: reason === 'draining' || reason === 'no_access' ? reason : 'other' });
    },
    sessionOpened(name) {
      sessionsOpened.inc({ connection: connection(name) });
    },
    statement(name, statementClass, decision, subject) {
      statements.inc({
        connection: connection(name),
        class: known(CLASSES, statementClass),
        decision: known(DECISIONS, decision),
      });
      if (subjectStatements && subject !== undefined) {
        if (subjectsSeen.size < maxSubjects) subjectsSeen.add(subject);
        subjectStatements.inc({
          subject: subjectsSeen.has(subject) ? subject : 'other',
          connection: connection(name),
        });
      }
    },
    gateDuration(phase, seconds) {
      gate.observe({ phase: PHASES.has(phase) ? phase : 'other' }, seconds);
    },
    auditAppended(type, seconds, failed) {
      records.inc({ type: TYPES.has(type) ? type : 'other', result: failed ? 'failed' : 'ok' });
      if (!failed) appendLatency.observe(seconds);
    },
    auditCommitted(count, seconds, failed) {
      if (failed) {
        commitFailures.inc();
        return;
      }
      batchSize.observe(count);
      commitLatency.observe(seconds);
    },
    chainHead(seq) {
      head.set({ replica }, seq);
    },
    approval(event, decisionSeconds) {
      if (!approvalEvents.has(event)) return;
      approvals.inc({ event });
      if (decisionSeconds !== undefined) decisionLatency.observe({ outcome: event }, decisionSeconds);
    },
    upstreamConnected(name, seconds) {
      upstreamConnect.observe({ connection: connection(name) }, seconds);
    },
    upstreamFailed(name, code) {
      const sqlstateClass = code && /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : 'none';
      upstreamErrors.inc({ connection: connection(name), sqlstate_class: sqlstateClass });
    },
    authFailed(reason) {
      authFailures.inc({ reason: AUTH_REASONS.has(reason) ? reason : 'other' });
    },
  };

  return {
    metrics,
    watch(next) {
      sources = { ...sources, ...next };
    },
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
