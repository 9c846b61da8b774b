/**
 * The evidence for a period, computed from audit records fed one at a time (in seq order) — by the
 * gateway as it pages through its store, by `hoopctl report verify --export` as it reads an export.
 * Pure and streaming: memory depends on the number of identities, days and open approvals, never on
 * the number of records. Both sides run this same code, so their figures agree exactly.
 */
import type { AuditRecord, Checkpoint } from '../audit.js';
import type { Identity } from '../identity.js';
import { CappedMap, Counter, ExceptionList, OVERFLOW_KEY } from './tally.js';
import type { IdentityRef, ReportCharts } from './types.js';

export interface EvidenceScope {
  /** RFC 3339 with microseconds, as records carry them: compared as strings, as the store does. */
  from: string;
  to: string;
  /** Only this connection's records (and gateway-wide records without a connection). */
  connection?: string;
}

export const EXCEPTION_KINDS = [
  'refusals',
  'failed_auth',
  'self_approval',
  'unapproved_changes',
  'privileged_statements',
  'machine_interactive',
  'revoked_use',
  'restores',
  'incomplete_records',
  'unidentified_sessions',
  'config_changes',
  'verify_failures',
  'fail_open',
  'short_retention',
  'alarms',
  'stale_identities',
] as const;
export type ExceptionKind = (typeof EXCEPTION_KINDS)[number];

/** A day older than this before the period's end with no activity makes an identity stale (AC-2). */
export const STALE_DAYS = 30;
const DAY_MS = 86_400_000;
/** Longest time axis of the per-day charts (ten years). */
const MAX_DAYS = 3660;
const CHANGE_CLASSES = new Set(['write', 'ddl', 'dcl', 'admin']);
const PRIVILEGED_CLASSES = new Set(['dcl', 'admin']);
/** Record types that describe a person's or program's action: each must name who, from where, on what. */
const ACTION_TYPES = new Set([
  'statement',
  'policy.blocked',
  'session.started',
  'session.ended',
  'auth.succeeded',
]);
const LATENCY_BUCKETS: { label: string; upTo: number }[] = [
  { label: '< 1 min', upTo: 60 },
  { label: '1–5 min', upTo: 300 },
  { label: '5–15 min', upTo: 900 },
  { label: '15–60 min', upTo: 3600 },
  { label: '1–4 h', upTo: 14_400 },
  { label: '> 4 h', upTo: Number.POSITIVE_INFINITY },
];
/** Open approval requests tracked for latency; beyond this, latencies are not measured (counted). */
const MAX_OPEN_APPROVALS = 100_000;

interface IdentityStats {
  ref: IdentityRef;
  groups: string[];
  sessions: number;
  statements: number;
  denied: number;
  sensitive: number;
  columns: Set<string>;
  classes: Counter;
  clients: Set<string>;
  interactive: number;
  ddl: number;
  dcl: number;
  admin: number;
  lastTime: string;
  lastSeq: number;
}

interface DayStats {
  allow: number;
  deny: number;
  approve: number;
  refusals: number;
  failed_logins: number;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const keyOf = (issuer: string | undefined, subject: string | undefined) =>
  `${issuer ?? ''}\n${subject ?? ''}`;
const who = (i: Identity | undefined) => i?.name ?? i?.subject ?? 'an unknown identity';
const oneLine = (text: unknown, max = 120) => {
  const t = String(text ?? '')
    .replace(/\s+/g, ' ')
    .trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
};

export function identityRef(i: Identity): IdentityRef {
  const ref: IdentityRef = { issuer: i.issuer, subject: i.subject };
  if (i.name) ref.name = i.name;
  if (i.kind) ref.kind = i.kind;
  return ref;
}

/** Everything the controls draw on; see controls.ts for which control shows what. */
export class EvidenceCollector {
  readonly exceptions = Object.fromEntries(EXCEPTION_KINDS.map((k) => [k, new ExceptionList()])) as Record<
    ExceptionKind,
    ExceptionList
  >;
  records = 0;
  readonly byType = new Counter(200);
  readonly statements = { total: 0, allow: 0, deny: 0, approve: 0, sensitive: 0 };
  readonly byClass = new Counter(50);
  readonly changes = { by_humans_unapproved: 0, approved: 0, by_machines: 0 };
  readonly sessions = { started: 0, ended: 0 };
  readonly sessionsByKind = new Counter(10);
  readonly sessionsByClient = new Counter(50);
  readonly auth = { succeeded: 0, failed: 0 };
  readonly failedByReason = new Counter(100);
  readonly failedBySource = new Counter();
  readonly refusalsByRule = new Counter();
  refusals = 0;
  readonly approvals = { requested: 0, granted: 0, rejected: 0, expired: 0, withdrawn: 0, decided: 0 };
  readonly access = { requested: 0, granted: 0, rejected: 0, expired: 0 };
  readonly lifecycle = { revoked: 0, restored: 0 };
  readonly auditAccess = new Counter(50);
  readonly auditAccessBy = new Counter();
  readonly config = { loads: 0, changes: 0, added: 0, removed: 0, changed: 0 };
  configHash: string | null = null;
  readonly keyRotations: {
    seq: number;
    time: string;
    old_key_id: string | null;
    new_key_id: string | null;
  }[] = [];
  checkpoints = 0;
  readonly checkpointKeys = new Set<string>();
  readonly retention = { purges: 0, records_purged: 0, min_days: null as number | null };
  readonly fields = { checked: 0, incomplete: 0 };
  readonly gateway = { starts: 0, stops: 0, fail_open_starts: 0 };
  /** Did the period's records verify (hash chain, signed checkpoints)? null: nothing to verify. */
  verified: boolean | null = null;
  latencyBuckets = LATENCY_BUCKETS.map(() => 0);
  latencySum = 0;
  latencyMax: number | null = null;
  untrackedApprovals = 0;
  readonly identities = new CappedMap<IdentityStats>(() => this.blankIdentity());
  private readonly days = new Map<string, DayStats>();
  private readonly openApprovals = new Map<string, { ms: number; requester: string }>();
  private readonly revokedNow = new Map<string, string>();

  constructor(readonly scope: EvidenceScope) {}

  /** Is this record part of the report? (in the period; this connection's or gateway-wide) */
  inScope(record: AuditRecord): boolean {
    if (record.time < this.scope.from || record.time >= this.scope.to) return false;
    return !this.scope.connection || !record.connection || record.connection === this.scope.connection;
  }

  /** Feed every record (in seq order); those out of scope are skipped here. */
  add(record: AuditRecord): void {
    if (!this.inScope(record)) return;
    this.records++;
    this.byType.add(record.type);
    const stats = record.identity ? this.statsOf(record) : undefined;
    if (ACTION_TYPES.has(record.type)) this.checkFields(record);
    this.handlers[record.type]?.(record, stats);
  }

  /** What each record type adds to the evidence (types not listed are only counted). */
  private readonly handlers: Record<string, (r: AuditRecord, stats: IdentityStats | undefined) => void> = {
    statement: (r, stats) => this.onStatement(r, stats),
    'policy.blocked': (r, stats) => this.onRefusal(r, stats),
    'session.started': (r, stats) => this.onSessionStarted(r, stats),
    'session.ended': () => {
      this.sessions.ended++;
    },
    'auth.succeeded': () => {
      this.auth.succeeded++;
    },
    'auth.failed': (r) => this.onAuthFailed(r),
    'approval.requested': (r) => this.onApprovalRequested(r),
    'approval.granted': (r) => this.onApprovalDecision(r),
    'approval.rejected': (r) => this.onApprovalDecision(r),
    'approval.expired': (r) => this.onApprovalClosed(r, 'expired'),
    'approval.withdrawn': (r) => this.onApprovalClosed(r, 'withdrawn'),
    'access.requested': () => {
      this.access.requested++;
    },
    'access.granted': () => {
      this.access.granted++;
    },
    'access.rejected': () => {
      this.access.rejected++;
    },
    'access.expired': () => {
      this.access.expired++;
    },
    'identity.revoked': (r) => this.onLifecycle(r),
    'identity.restored': (r) => this.onLifecycle(r),
    'audit.accessed': (r) => this.onAuditAccessed(r),
    'config.loaded': (r) => this.onConfigLoaded(r),
    'audit.key_rotated': (r) => this.onKeyRotated(r),
    'retention.purged': (r) => this.onPurge(r),
    'gateway.started': (r) => this.onGatewayStarted(r),
    'gateway.stopped': () => {
      this.gateway.stops++;
    },
    // Planned by the audit stream: the log found a head it did not write, or similar.
    'audit.alarm': (r) => {
      this.exceptions.alarms.add(r.seq, `audit alarm: ${oneLine(r.data.reason ?? r.data.message)}`);
    },
  };

  /** A signed checkpoint of the chain the records came from; those signed in the period are counted. */
  addCheckpoint(cp: Checkpoint): void {
    if (cp.time < this.scope.from || cp.time >= this.scope.to) return;
    this.checkpoints++;
    this.checkpointKeys.add(cp.key_id);
  }

  /** The result of verifying the records the period was read from (with their anchors). */
  verification(result: { ok: true } | { ok: false; seq: number; reason: string } | undefined): void {
    if (!result) return;
    this.verified = result.ok;
    if (!result.ok) {
      this.exceptions.verify_failures.add(
        result.seq,
        `the hash chain does not verify at seq ${result.seq}: ${result.reason}`,
      );
    }
  }

  /** After the last record: identities idle for STALE_DAYS before the period's end (AC-2). */
  finish(): void {
    const cutoff = new Date(Date.parse(this.scope.to) - STALE_DAYS * DAY_MS).toISOString();
    for (const s of this.sortedIdentities()) {
      if (s.lastTime < cutoff) {
        this.exceptions.stale_identities.add(
          s.lastSeq,
          `${s.ref.name ?? s.ref.subject} (${s.ref.kind ?? 'identity'}) has not been active since ${s.lastTime.slice(0, 10)}`,
        );
      }
    }
  }

  sortedIdentities(): IdentityStats[] {
    return [...this.identities.entries.values()].sort((a, b) =>
      keyOf(a.ref.issuer, a.ref.subject) < keyOf(b.ref.issuer, b.ref.subject) ? -1 : 1,
    );
  }

  charts(): ReportCharts {
    const days = this.allDays();
    const decided = this.latencyBuckets.reduce((a, b) => a + b, 0);
    return {
      statements_per_day: days.map(([day, d]) => ({ day, allow: d.allow, deny: d.deny, approve: d.approve })),
      refusals_per_day: days.map(([day, d]) => ({
        day,
        refusals: d.refusals,
        failed_logins: d.failed_logins,
      })),
      approval_latency: {
        buckets: LATENCY_BUCKETS.map((b, i) => ({ label: b.label, count: this.latencyBuckets[i]! })),
        decided,
        mean_seconds: decided > 0 ? Math.round(this.latencySum / decided) : null,
        max_seconds: this.latencyMax,
      },
      sensitive_access_top: this.sortedIdentities()
        .filter((s) => s.sensitive > 0)
        .sort((a, b) => b.sensitive - a.sensitive)
        .slice(0, 10)
        .map((s) => ({ identity: s.ref, statements: s.sensitive, columns: [...s.columns].sort() })),
    };
  }

  // --- per record type ---------------------------------------------------------------------------

  private onStatement(record: AuditRecord, stats: IdentityStats | undefined): void {
    const d = record.data;
    const decision = str(d.decision) ?? 'unknown';
    const cls = str(d.class) ?? 'unknown';
    this.statements.total++;
    if (decision === 'allow' || decision === 'deny' || decision === 'approve') {
      this.statements[decision]++;
      this.day(record.time)[decision]++;
    }
    this.byClass.add(cls);
    const masked = maskedSources(d.masked_columns);
    if (stats) {
      stats.statements++;
      stats.classes.add(cls);
      if (cls === 'ddl' || cls === 'dcl' || cls === 'admin') stats[cls]++;
      if (masked.length > 0) {
        stats.sensitive++;
        for (const c of masked) if (stats.columns.size < 20) stats.columns.add(c);
      }
    }
    if (masked.length > 0) this.statements.sensitive++;
    if (decision === 'deny') return;
    this.checkChange(record, cls, decision);
    if (PRIVILEGED_CLASSES.has(cls)) {
      this.exceptions.privileged_statements.add(
        record.seq,
        `${cls} statement by ${who(record.identity)} (${decision === 'approve' ? `approval #${d.approval_id}` : `rule "${d.rule}"`}): ${oneLine(d.text)}`,
        record.session,
      );
    }
    const key = record.identity && keyOf(record.identity.issuer, record.identity.subject);
    const revokedAt = key ? this.revokedNow.get(key) : undefined;
    if (revokedAt) {
      this.exceptions.revoked_use.add(
        record.seq,
        `${who(record.identity)} ran a statement after being revoked at ${revokedAt}`,
        record.session,
      );
    }
  }

  /** CC8.1: changes by people need someone else's approval; a pipeline's (machine identity's) do not. */
  private checkChange(record: AuditRecord, cls: string, decision: string): void {
    if (!CHANGE_CLASSES.has(cls)) return;
    if (decision === 'approve') {
      this.changes.approved++;
      return;
    }
    if (record.identity && record.identity.kind !== 'human') {
      this.changes.by_machines++;
      return;
    }
    this.changes.by_humans_unapproved++;
    this.exceptions.unapproved_changes.add(
      record.seq,
      `${cls} by ${who(record.identity)} ran without an approval (rule "${record.data.rule}"): ${oneLine(record.data.text)}`,
      record.session,
    );
  }

  private onRefusal(record: AuditRecord, stats: IdentityStats | undefined): void {
    this.refusals++;
    this.day(record.time).refusals++;
    const rule = str(record.data.rule) ?? '(none)';
    this.refusalsByRule.add(rule);
    if (stats) stats.denied++;
    this.exceptions.refusals.add(
      record.seq,
      `refused by rule "${rule}" for ${who(record.identity)}: ${oneLine(record.data.reason ?? record.data.text)}`,
      record.session,
    );
  }

  private onSessionStarted(record: AuditRecord, stats: IdentityStats | undefined): void {
    this.sessions.started++;
    const kind = record.identity?.kind ?? 'none';
    const client = str(record.data.client) ?? 'unknown';
    this.sessionsByKind.add(kind);
    this.sessionsByClient.add(client);
    if (!record.identity?.subject) {
      this.exceptions.unidentified_sessions.add(record.seq, 'a session without an identity', record.session);
      return;
    }
    if (stats) {
      stats.sessions++;
      if (stats.clients.size < 10) stats.clients.add(client); // client names are the client's to choose
    }
    if (kind !== 'human' && client === 'connect') {
      if (stats) stats.interactive++;
      this.exceptions.machine_interactive.add(
        record.seq,
        `${kind} identity ${who(record.identity)} opened an interactive tunnel (hoopctl connect) from ${record.source ?? 'an unknown address'}`,
        record.session,
      );
    }
    const revokedAt = this.revokedNow.get(keyOf(record.identity.issuer, record.identity.subject));
    if (revokedAt) {
      this.exceptions.revoked_use.add(
        record.seq,
        `${who(record.identity)} opened a session after being revoked at ${revokedAt}`,
        record.session,
      );
    }
  }

  private onAuthFailed(record: AuditRecord): void {
    // Aggregated records (one per source and window) say how many failures they stand for.
    const count = Math.max(1, Math.floor(num(record.data.count) ?? 1));
    this.auth.failed += count;
    this.day(record.time).failed_logins += count;
    const reason = str(record.data.reason) ?? 'unknown';
    this.failedByReason.add(reason, count);
    const ip = sourceHost(record.source);
    this.failedBySource.add(ip, count);
    this.exceptions.failed_auth.add(
      record.seq,
      `failed authentication (${reason})${record.identity ? ` of ${who(record.identity)}` : ''} from ${ip}${count > 1 ? `, ${count} times` : ''}`,
      record.session,
    );
  }

  private onApprovalRequested(record: AuditRecord): void {
    this.approvals.requested++;
    if (this.openApprovals.size >= MAX_OPEN_APPROVALS) {
      this.untrackedApprovals++;
      return;
    }
    this.openApprovals.set(String(record.data.approval_id), {
      ms: Date.parse(record.time),
      requester: keyOf(record.identity?.issuer, record.identity?.subject),
    });
  }

  private onApprovalDecision(record: AuditRecord): void {
    const d = record.data;
    if (record.type === 'approval.granted') this.approvals.granted++;
    else this.approvals.rejected++;
    const id = String(d.approval_id);
    const open = this.openApprovals.get(id);
    const decider = record.identity;
    const self = open
      ? open.requester === keyOf(decider?.issuer, decider?.subject)
      : decider?.subject !== undefined && decider.subject === d.requester;
    if (self) {
      this.exceptions.self_approval.add(
        record.seq,
        `${who(decider)} decided their own request #${id}`,
        record.session,
      );
    }
    const final = record.type === 'approval.rejected' || d.status === 'approved' || d.status === 'rejected';
    if (!final) return;
    this.approvals.decided++;
    if (!open) return;
    this.openApprovals.delete(id);
    const seconds = Math.max(0, Math.round((Date.parse(record.time) - open.ms) / 1000));
    const bucket = LATENCY_BUCKETS.findIndex((b) => seconds < b.upTo);
    this.latencyBuckets[bucket]!++;
    this.latencySum += seconds;
    this.latencyMax = Math.max(this.latencyMax ?? 0, seconds);
  }

  private onApprovalClosed(record: AuditRecord, how: 'expired' | 'withdrawn'): void {
    this.approvals[how]++;
    this.openApprovals.delete(String(record.data.approval_id));
  }

  private onLifecycle(record: AuditRecord): void {
    const d = record.data;
    const key = keyOf(str(d.issuer), str(d.subject));
    const target = `${str(d.subject) ?? '?'}`;
    if (record.type === 'identity.revoked') {
      this.lifecycle.revoked++;
      this.revokedNow.set(key, record.time);
      return;
    }
    this.lifecycle.restored++;
    this.revokedNow.delete(key);
    this.exceptions.restores.add(
      record.seq,
      `${who(record.identity)} restored ${target}${d.reason ? ` (${oneLine(d.reason)})` : ' without giving a reason'}`,
    );
  }

  private onAuditAccessed(record: AuditRecord): void {
    const action = str(record.data.action) ?? 'unknown';
    this.auditAccess.add(action);
    this.auditAccessBy.add(record.identity?.name ?? record.identity?.subject ?? 'unknown');
    const result = record.data.result as Record<string, unknown> | undefined;
    if (action === 'audit.verify' && result && result.ok === false) {
      this.exceptions.verify_failures.add(
        record.seq,
        `audit verify by ${who(record.identity)} failed at seq ${result.seq}: ${oneLine(result.reason)}`,
      );
    }
  }

  private onConfigLoaded(record: AuditRecord): void {
    this.config.loads++;
    this.configHash = str(record.data.hash) ?? null;
    const diff = record.data.diff as { added?: string[]; removed?: string[]; changed?: string[] } | undefined;
    if (!diff) return;
    const parts = [
      ...(diff.added ?? []).map((k) => `+${k}`),
      ...(diff.removed ?? []).map((k) => `-${k}`),
      ...(diff.changed ?? []).map((k) => `~${k}`),
    ];
    if (parts.length === 0) return;
    this.config.changes++;
    this.config.added += diff.added?.length ?? 0;
    this.config.removed += diff.removed?.length ?? 0;
    this.config.changed += diff.changed?.length ?? 0;
    this.exceptions.config_changes.add(
      record.seq,
      `configuration changed at start: ${oneLine(parts.join(' '), 300)}`,
    );
  }

  private onKeyRotated(record: AuditRecord): void {
    if (this.keyRotations.length >= 100) return;
    this.keyRotations.push({
      seq: record.seq,
      time: record.time,
      old_key_id: str(record.data.old_key_id) ?? null,
      new_key_id: str(record.data.new_key_id) ?? null,
    });
  }

  private onPurge(record: AuditRecord): void {
    this.retention.purges++;
    this.retention.records_purged += num(record.data.records) ?? 0;
    const days = num(record.data.days);
    if (days === undefined) return;
    this.retention.min_days = Math.min(this.retention.min_days ?? days, days);
    if (days < 365) {
      this.exceptions.short_retention.add(
        record.seq,
        `records older than ${days} days were purged (PCI DSS 10.5.1 asks for 12 months)`,
      );
    }
  }

  private onGatewayStarted(record: AuditRecord): void {
    this.gateway.starts++;
    if (record.data.fail_open === true) {
      this.gateway.fail_open_starts++;
      this.exceptions.fail_open.add(
        record.seq,
        'the gateway started with audit.fail_open: statements could run unrecorded',
      );
    }
  }

  // --- helpers -----------------------------------------------------------------------------------

  private checkFields(record: AuditRecord): void {
    this.fields.checked++;
    const missing: string[] = [];
    if (!record.identity?.subject || !record.identity.issuer) missing.push('identity');
    if (!record.source) missing.push('source');
    if (!record.connection) missing.push('connection');
    if (!record.session) missing.push('session');
    if (record.type === 'statement' && !record.data.decision) missing.push('decision');
    if (record.type === 'statement' && typeof record.data.text !== 'string') missing.push('text');
    if (missing.length === 0) return;
    this.fields.incomplete++;
    this.exceptions.incomplete_records.add(
      record.seq,
      `${record.type} record without ${missing.join(', ')}`,
      record.session,
    );
  }

  private statsOf(record: AuditRecord): IdentityStats {
    const i = record.identity!;
    const key = keyOf(i.issuer, i.subject);
    const stats = this.identities.get(key);
    if (stats.ref.subject === '') {
      // Past the cap, every further identity shares one entry, named for what it is.
      const overflow = !this.identities.entries.has(key);
      stats.ref = overflow ? { issuer: '', subject: OVERFLOW_KEY } : identityRef(i);
      stats.groups = overflow ? [] : [...(i.groups ?? [])].sort();
    }
    stats.lastTime = record.time;
    stats.lastSeq = record.seq;
    return stats;
  }

  private blankIdentity(): IdentityStats {
    return {
      ref: { issuer: '', subject: '' },
      groups: [],
      sessions: 0,
      statements: 0,
      denied: 0,
      sensitive: 0,
      columns: new Set(),
      classes: new Counter(50),
      clients: new Set(),
      interactive: 0,
      ddl: 0,
      dcl: 0,
      admin: 0,
      lastTime: '',
      lastSeq: 0,
    };
  }

  private day(time: string): DayStats {
    const key = time.slice(0, 10);
    let d = this.days.get(key);
    if (!d) {
      d = { allow: 0, deny: 0, approve: 0, refusals: 0, failed_logins: 0 };
      this.days.set(key, d);
    }
    return d;
  }

  /**
   * Every day of the period in order, the quiet ones as zeros (a time axis has no gaps). A period longer
   * than MAX_DAYS starts its axis at the first active day and draws MAX_DAYS days from there.
   */
  private allDays(): [string, DayStats][] {
    const zero = () => ({ allow: 0, deny: 0, approve: 0, refusals: 0, failed_logins: 0 });
    const dayOf = (iso: string) => Date.parse(`${iso.slice(0, 10)}T00:00:00Z`);
    let last = dayOf(new Date(Date.parse(this.scope.to) - 1).toISOString());
    let first = dayOf(this.scope.from);
    if ((last - first) / DAY_MS >= MAX_DAYS) {
      const active = [...this.days.keys()].sort()[0];
      first = active ? dayOf(active) : last;
      last = Math.min(last, first + (MAX_DAYS - 1) * DAY_MS);
    }
    const out: [string, DayStats][] = [];
    for (let t = first; t <= last; t += DAY_MS) {
      const key = new Date(t).toISOString().slice(0, 10);
      out.push([key, this.days.get(key) ?? zero()]);
    }
    return out;
  }
}

/**
 * The source columns a statement's masking touched: `masked_columns` entries are `{ column, sources,
 * mask, rule, … }` (the output column and the table columns it comes from); plain names are accepted too.
 */
function maskedSources(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const names = new Set<string>();
  for (const entry of value) {
    if (typeof entry === 'string') names.add(entry);
    else if (entry && typeof entry === 'object') {
      const { sources, column } = entry as { sources?: unknown; column?: unknown };
      if (Array.isArray(sources) && sources.length) for (const s of sources) names.add(String(s));
      else if (typeof column === 'string') names.add(column);
    }
  }
  return [...names];
}

/** `10.0.0.7:51234` → `10.0.0.7`; `[::1]:5` → `::1`: failures are counted per address, not per port. */
export function sourceHost(source: string | undefined): string {
  if (!source) return 'unknown';
  const v6 = /^\[([^\]]+)\]/.exec(source);
  if (v6) return v6[1]!;
  const at = source.lastIndexOf(':');
  return at > 0 ? source.slice(0, at) : source;
}
