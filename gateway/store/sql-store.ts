/** Store over either SQL backend: every query lives here once, so both backends behave the same. */
import type { Identity } from '../../src/shared/identity.js';
import type { SqlDriver } from './driver.js';
import { SqlAuditStore } from './sql-audit.js';
import type {
  Approval,
  ApprovalPatch,
  ApprovalStatus,
  Grant,
  GrantPatch,
  GrantStatus,
  IdentityEntry,
  NewApproval,
  NewGrant,
  ReplicaInfo,
  Store,
} from './types.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;

function approvalOf(row: Row): Approval {
  return {
    id: num(row.id),
    status: row.status as ApprovalStatus,
    requester: json<Identity>(row.requester),
    connection: String(row.connection),
    session: opt(row.session as string | null),
    statement: String(row.statement),
    statement_hash: String(row.statement_hash),
    params: row.params === null ? undefined : json<unknown[]>(row.params),
    search_path: opt(row.search_path as string | null | undefined),
    rule: String(row.rule),
    policy: String(row.policy),
    approvers: json<string[]>(row.approvers),
    approvals_required: num(row.approvals_required),
    decisions: json(row.decisions),
    created_at: String(row.created_at),
    expires_at: String(row.expires_at),
    decided_at: opt(row.decided_at as string | null),
    used_at: opt(row.used_at as string | null),
    mode: (opt(row.mode as string | null) ?? 'wait') as Approval['mode'],
    revision: num(row.revision ?? 0),
    statement_id: opt(row.statement_id as string | null),
    used_session: opt(row.used_session as string | null),
    outcome_reason: opt(row.outcome_reason as string | null),
    replica: opt(row.replica as string | null | undefined),
  };
}

function replicaOf(row: Row): ReplicaInfo {
  return {
    replica: String(row.replica),
    instance: String(row.instance),
    chain: String(row.chain),
    host: opt(row.host as string | null),
    pid: row.pid === null || row.pid === undefined ? undefined : num(row.pid),
    version: opt(row.version as string | null),
    started_at: String(row.started_at),
    heartbeat_at: String(row.heartbeat_at),
    stopped_at: opt(row.stopped_at as string | null),
    lost_at: opt(row.lost_at as string | null),
    lost_by: opt(row.lost_by as string | null),
  };
}

function identityOf(row: Row): IdentityEntry {
  return {
    issuer: String(row.issuer),
    subject: String(row.subject),
    kind: row.kind as IdentityEntry['kind'],
    name: opt(row.name as string | null),
    groups: json<string[]>(row.groups_json),
    first_seen: String(row.first_seen),
    last_seen: String(row.last_seen),
    revoked_at: opt(row.revoked_at as string | null),
    revoked_reason: opt(row.revoked_reason as string | null),
  };
}

function grantOf(row: Row): Grant {
  return {
    id: num(row.id),
    issuer: String(row.issuer),
    subject: String(row.subject),
    connection: String(row.connection),
    policy: String(row.policy),
    reason: String(row.reason),
    status: row.status as GrantStatus,
    duration_ms: num(row.duration_ms),
    created_at: String(row.created_at),
    approved_at: opt(row.approved_at as string | null),
    expires_at: opt(row.expires_at as string | null),
    approved_by: opt(row.approved_by as string | null),
    revision: num(row.revision ?? 0),
    decided_by: opt(row.decided_by as string | null),
    decision_reason: opt(row.decision_reason as string | null),
    requester:
      row.requester === null || row.requester === undefined ? undefined : json<Identity>(row.requester),
  };
}

/** `WHERE a = ? AND b = ?` over the filters that are set (no `? IS NULL`: PostgreSQL cannot type it). */
function whereEquals(filters: Record<string, unknown>) {
  const keys = Object.keys(filters).filter((k) => filters[k] !== undefined);
  return {
    sql: keys.length ? `WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}` : '',
    params: keys.map((k) => filters[k]),
  };
}

/** `SET a = ?, b = ?` from the defined members of a patch, values encoded by `encode`. */
function setClause(patch: Record<string, unknown>, encode: (key: string, v: unknown) => unknown) {
  const keys = Object.keys(patch).filter((k) => patch[k] !== undefined);
  return { sql: keys.map((k) => `${k} = ?`).join(', '), params: keys.map((k) => encode(k, patch[k])) };
}

/**
 * Every table behind `Store`: the audit log's queries live in SqlAuditStore (sql-audit.ts); approvals,
 * identities, grants and replicas here.
 */
export class SqlStore extends SqlAuditStore implements Store {
  constructor(db: SqlDriver, dataDir: string) {
    super(db, dataDir);
  }

  // --- replicas ----------------------------------------------------------------------------------

  async getReplica(replica: string): Promise<ReplicaInfo | undefined> {
    const rows = await this.db.query<Row>('SELECT * FROM replicas WHERE replica = ?', [replica]);
    return rows[0] ? replicaOf(rows[0]) : undefined;
  }

  async upsertReplica(r: ReplicaInfo): Promise<void> {
    await this.db.run(
      `INSERT INTO replicas (replica, instance, chain, host, pid, version, started_at, heartbeat_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (replica) DO UPDATE SET instance = excluded.instance, chain = excluded.chain, host = excluded.host,
         pid = excluded.pid, version = excluded.version, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, lost_at = NULL, lost_by = NULL`,
      [
        r.replica,
        r.instance,
        r.chain,
        r.host ?? null,
        r.pid ?? null,
        r.version ?? null,
        r.started_at,
        r.heartbeat_at,
      ],
    );
  }

  async heartbeat(replica: string, instance: string, at: string): Promise<boolean> {
    const changed = await this.db.run(
      'UPDATE replicas SET heartbeat_at = ? WHERE replica = ? AND instance = ? AND lost_at IS NULL',
      [at, replica, instance],
    );
    return changed > 0;
  }

  async markReplicaStopped(replica: string, instance: string, at: string): Promise<void> {
    await this.db.run('UPDATE replicas SET stopped_at = ? WHERE replica = ? AND instance = ?', [
      at,
      replica,
      instance,
    ]);
  }

  async listSilentReplicas(before: string): Promise<ReplicaInfo[]> {
    const rows = await this.db.query<Row>(
      'SELECT * FROM replicas WHERE stopped_at IS NULL AND lost_at IS NULL AND heartbeat_at < ? ORDER BY replica',
      [before],
    );
    return rows.map(replicaOf);
  }

  async markReplicaLost(replica: string, heartbeatBefore: string, by: string, at: string): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE replicas SET lost_at = ?, lost_by = ?
       WHERE replica = ? AND stopped_at IS NULL AND lost_at IS NULL AND heartbeat_at < ?`,
      [at, by, replica, heartbeatBefore],
    );
    return changed > 0;
  }

  async listReplicas(): Promise<ReplicaInfo[]> {
    const rows = await this.db.query<Row>('SELECT * FROM replicas ORDER BY replica');
    return rows.map(replicaOf);
  }

  // --- approvals ---------------------------------------------------------------------------------

  async createApproval(a: NewApproval): Promise<Approval> {
    const rows = await this.db.query<Row>(
      `INSERT INTO approvals (status, requester, requester_subject, connection, session, statement, statement_hash,
         params, rule, policy, approvers, approvals_required, decisions, created_at, expires_at, mode, statement_id, replica,
         search_path)
       VALUES ('pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?) RETURNING *`,
      [
        JSON.stringify(a.requester),
        a.requester.subject,
        a.connection,
        a.session ?? null,
        a.statement,
        a.statement_hash,
        a.params === undefined ? null : JSON.stringify(a.params),
        a.rule,
        a.policy,
        JSON.stringify(a.approvers),
        a.approvals_required,
        a.created_at,
        a.expires_at,
        a.mode ?? 'wait',
        a.statement_id ?? null,
        a.replica ?? null,
        a.search_path ?? null,
      ],
    );
    return approvalOf(rows[0]!);
  }

  async getApproval(id: number): Promise<Approval | undefined> {
    const rows = await this.db.query<Row>('SELECT * FROM approvals WHERE id = ?', [id]);
    return rows[0] ? approvalOf(rows[0]) : undefined;
  }

  async listApprovals(
    filter: { status?: ApprovalStatus; connection?: string; replica?: string } = {},
  ): Promise<Approval[]> {
    const where = whereEquals({
      status: filter.status,
      connection: filter.connection,
      replica: filter.replica,
    });
    const rows = await this.db.query<Row>(`SELECT * FROM approvals ${where.sql} ORDER BY id`, where.params);
    return rows.map(approvalOf);
  }

  async updateApproval(id: number, patch: ApprovalPatch): Promise<Approval | undefined> {
    const set = setClause(patch, (k, v) => (k === 'decisions' ? JSON.stringify(v) : v));
    if (!set.sql) return this.getApproval(id);
    const rows = await this.db.query<Row>(`UPDATE approvals SET ${set.sql} WHERE id = ? RETURNING *`, [
      ...set.params,
      id,
    ]);
    return rows[0] ? approvalOf(rows[0]) : undefined;
  }

  async transitionApproval(
    id: number,
    revision: number,
    patch: ApprovalPatch,
  ): Promise<Approval | undefined> {
    const set = setClause(patch, (k, v) => (k === 'decisions' ? JSON.stringify(v) : v));
    const rows = await this.db.query<Row>(
      `UPDATE approvals SET ${set.sql ? `${set.sql}, ` : ''}revision = revision + 1 WHERE id = ? AND revision = ? RETURNING *`,
      [...set.params, id, revision],
    );
    return rows[0] ? approvalOf(rows[0]) : undefined;
  }

  async listExpiredApprovals(now: string): Promise<Approval[]> {
    const rows = await this.db.query<Row>(
      "SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY id",
      [now],
    );
    return rows.map(approvalOf);
  }

  // --- identities --------------------------------------------------------------------------------

  async recordIdentitySeen(identity: Identity, at: string): Promise<IdentityEntry> {
    const rows = await this.db.query<Row>(
      `INSERT INTO identities (issuer, subject, kind, name, groups_json, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (issuer, subject) DO UPDATE SET
         kind = excluded.kind, name = excluded.name, groups_json = excluded.groups_json, last_seen = excluded.last_seen
       RETURNING *`,
      [
        identity.issuer,
        identity.subject,
        identity.kind,
        identity.name ?? null,
        JSON.stringify(identity.groups),
        at,
        at,
      ],
    );
    return identityOf(rows[0]!);
  }

  async getIdentity(issuer: string, subject: string): Promise<IdentityEntry | undefined> {
    const rows = await this.db.query<Row>('SELECT * FROM identities WHERE issuer = ? AND subject = ?', [
      issuer,
      subject,
    ]);
    return rows[0] ? identityOf(rows[0]) : undefined;
  }

  async listIdentities(): Promise<IdentityEntry[]> {
    const rows = await this.db.query<Row>('SELECT * FROM identities ORDER BY last_seen DESC, subject');
    return rows.map(identityOf);
  }

  async listRevokedIdentities(): Promise<IdentityEntry[]> {
    const rows = await this.db.query<Row>(
      'SELECT * FROM identities WHERE revoked_at IS NOT NULL ORDER BY revoked_at, subject',
    );
    return rows.map(identityOf);
  }

  async setIdentityRevoked(
    issuer: string,
    subject: string,
    revoked: { at: string; reason: string } | null,
  ): Promise<boolean> {
    const changed = await this.db.run(
      'UPDATE identities SET revoked_at = ?, revoked_reason = ? WHERE issuer = ? AND subject = ?',
      [revoked?.at ?? null, revoked?.reason ?? null, issuer, subject],
    );
    return changed > 0;
  }

  // --- time-boxed grants -------------------------------------------------------------------------

  async createGrant(g: NewGrant): Promise<Grant> {
    const rows = await this.db.query<Row>(
      `INSERT INTO grants (issuer, subject, connection, policy, reason, status, duration_ms, created_at, requester)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING *`,
      [
        g.issuer,
        g.subject,
        g.connection,
        g.policy,
        g.reason,
        g.duration_ms,
        g.created_at,
        g.requester ? JSON.stringify(g.requester) : null,
      ],
    );
    return grantOf(rows[0]!);
  }

  async getGrant(id: number): Promise<Grant | undefined> {
    const rows = await this.db.query<Row>('SELECT * FROM grants WHERE id = ?', [id]);
    return rows[0] ? grantOf(rows[0]) : undefined;
  }

  async listGrants(filter: { subject?: string; status?: GrantStatus } = {}): Promise<Grant[]> {
    const where = whereEquals({ subject: filter.subject, status: filter.status });
    const rows = await this.db.query<Row>(`SELECT * FROM grants ${where.sql} ORDER BY id`, where.params);
    return rows.map(grantOf);
  }

  async updateGrant(id: number, patch: GrantPatch): Promise<Grant | undefined> {
    const set = setClause(patch, (_k, v) => v);
    if (!set.sql) return this.getGrant(id);
    const rows = await this.db.query<Row>(`UPDATE grants SET ${set.sql} WHERE id = ? RETURNING *`, [
      ...set.params,
      id,
    ]);
    return rows[0] ? grantOf(rows[0]) : undefined;
  }

  async transitionGrant(id: number, revision: number, patch: GrantPatch): Promise<Grant | undefined> {
    const set = setClause(patch, (_k, v) => v);
    const rows = await this.db.query<Row>(
      `UPDATE grants SET ${set.sql ? `${set.sql}, ` : ''}revision = revision + 1 WHERE id = ? AND revision = ? RETURNING *`,
      [...set.params, id, revision],
    );
    return rows[0] ? grantOf(rows[0]) : undefined;
  }

  async close(): Promise<void> {
    await this.closeWriters();
    await this.db.close();
  }
}
