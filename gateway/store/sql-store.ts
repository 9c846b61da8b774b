/** Store over either SQL backend: every query lives here once, so both backends behave the same. */
import type { AuditRecord, Checkpoint, SessionSummary, SigningPublicKey } from '../../src/shared/audit.js';
import { GENESIS_HASH } from '../../src/shared/audit.js';
import type { Identity } from '../../src/shared/identity.js';
import type { SqlDriver, SqlExecutor } from './driver.js';
import { LOCKS } from './driver.js';
import type {
  Approval,
  ApprovalPatch,
  ApprovalStatus,
  ChainHead,
  EncodedRecord,
  Grant,
  GrantPatch,
  GrantStatus,
  IdentityEntry,
  NewApproval,
  NewGrant,
  RecordQuery,
  SessionQuery,
  Store,
} from './types.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;

/** Columns copied out of a record for filtering, and the record's canonical text (encoded by the log). */
function recordRow({ record: r, text }: EncodedRecord): unknown[] {
  const decision = typeof r.data.decision === 'string' ? r.data.decision : null;
  return [
    r.seq,
    r.time,
    r.type,
    r.session ?? null,
    r.connection ?? null,
    r.identity?.subject ?? null,
    decision,
    text,
  ];
}

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

/** SQLite: the newest record's seq and hash (extracted in SQL: no copy of the whole record to JavaScript). */
const NEWEST_RECORD_SQLITE =
  "SELECT seq, json_extract(record, '$.hash') AS hash FROM audit_records ORDER BY seq DESC LIMIT 1";
/** After a purge of everything, the chain continues from the anchoring checkpoint. */
const ANCHOR_CHECKPOINT = 'SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1';

export class SqlStore implements Store {
  readonly kind: 'sqlite' | 'postgres';
  /** SQLite: the chain's head as this process last committed it (appendOnWriter checks it). */
  private committedHead: ChainHead | undefined;
  /** SQLite: appends go to the writer one batch at a time, in order. */
  private appending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: SqlDriver,
    readonly dataDir: string,
  ) {
    this.kind = db.dialect;
  }

  // --- audit log ---------------------------------------------------------------------------------

  private async readHead(tx: SqlExecutor): Promise<ChainHead> {
    // The hash is inside the record's JSON. This runs in every append transaction: SQLite extracts it
    // itself (no copy of the whole record into JavaScript); PostgreSQL ships the one row and we parse it.
    if (this.db.dialect === 'sqlite') {
      const rows = await tx.query<Row>(NEWEST_RECORD_SQLITE);
      if (rows[0]) return { seq: num(rows[0].seq), hash: String(rows[0].hash) };
    } else {
      const rows = await tx.query<Row>('SELECT seq, record FROM audit_records ORDER BY seq DESC LIMIT 1');
      if (rows[0]) return { seq: num(rows[0].seq), hash: json<AuditRecord>(rows[0].record).hash };
    }
    const anchors = await tx.query<Row>(ANCHOR_CHECKPOINT);
    if (anchors[0]) return { seq: num(anchors[0].seq), hash: String(anchors[0].hash) };
    return { seq: 0, hash: GENESIS_HASH };
  }

  head(): Promise<ChainHead> {
    return this.readHead(this.db);
  }

  appendBatch(build: (head: ChainHead) => EncodedRecord[]): Promise<AuditRecord[]> {
    // SQLite (the only driver with a writer thread): see appendOnWriter.
    if (this.db.insertChained) {
      const append = () => this.appendOnWriter(build);
      const done = this.appending.then(append, append);
      this.appending = done.catch(() => undefined);
      return done;
    }
    // PostgreSQL: under the append lock, one statement for the whole batch (column arrays unnested).
    return this.db.transaction(async (tx) => {
      const encoded = build(await this.readHead(tx));
      const records = encoded.map((e) => e.record);
      if (records.length === 0) return records;
      const rows = encoded.map(recordRow);
      const columns = rows[0]!.map((_, i) => rows.map((r) => r[i]));
      await tx.run(
        `INSERT INTO audit_records (seq, time, type, session, connection, subject, decision, record)
         SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])`,
        columns,
      );
      return records;
    }, LOCKS.auditAppend);
  }

  /**
   * SQLite: chain onto the head this process last committed (read once), and let the writer thread
   * insert only if that is still the head; if another writer moved it (a second gateway on the same
   * file, a purge that emptied the table), chain again onto the head it found.
   */
  private async appendOnWriter(build: (head: ChainHead) => EncodedRecord[]): Promise<AuditRecord[]> {
    const insertChained = this.db.insertChained!;
    const headQueries = [NEWEST_RECORD_SQLITE, ANCHOR_CHECKPOINT];
    const insert =
      'INSERT INTO audit_records (seq, time, type, session, connection, subject, decision, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
    let head = this.committedHead ?? { seq: 0, hash: GENESIS_HASH };
    for (let attempt = 0; ; attempt++) {
      const encoded = build(head);
      const records = encoded.map((e) => e.record);
      if (records.length === 0) return records;
      let result: Awaited<ReturnType<typeof insertChained>>;
      try {
        result = await insertChained({ headQueries, expect: head, insert, rows: encoded.map(recordRow) });
      } catch (err) {
        this.committedHead = undefined;
        throw err;
      }
      if (result.committed) {
        const last = records.at(-1)!;
        this.committedHead = { seq: last.seq, hash: last.hash };
        return records;
      }
      if (attempt >= 5) throw new Error('the audit chain kept moving under this gateway (another writer?)');
      head = result.head ?? { seq: 0, hash: GENESIS_HASH };
    }
  }

  async listRecords(query: RecordQuery = {}): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => {
      where.push(clause);
      params.push(value);
    };
    if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
    if (query.throughSeq !== undefined) add('seq <= ?', query.throughSeq);
    if (query.since) add('time >= ?', query.since);
    if (query.until) add('time < ?', query.until);
    if (query.session) add('session = ?', query.session);
    if (query.type) add('type = ?', query.type);
    params.push(query.limit ?? 1000);
    const rows = await this.db.query<Row>(
      `SELECT record FROM audit_records ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${query.descending ? 'DESC' : ''} LIMIT ?`,
      params,
    );
    return rows.map((r) => json<AuditRecord>(r.record));
  }

  deleteRecordsThrough(seq: number): Promise<number> {
    return this.db.transaction(
      (tx) => tx.run('DELETE FROM audit_records WHERE seq <= ?', [seq]),
      LOCKS.auditAppend,
    );
  }

  async listSessions(query: SessionQuery = {}): Promise<SessionSummary[]> {
    const where = ['session IS NOT NULL'];
    const params: unknown[] = [];
    if (query.connection) {
      where.push('connection = ?');
      params.push(query.connection);
    }
    if (query.subject) {
      where.push('subject = ?');
      params.push(query.subject);
    }
    const having: string[] = [];
    if (query.until) {
      having.push('MIN(time) < ?');
      params.push(query.until);
    }
    if (query.since) {
      having.push('MAX(time) >= ?');
      params.push(query.since);
    }
    params.push(query.limit ?? 1000);
    const groups = await this.db.query<Row>(
      `SELECT session,
         MIN(seq) AS first_seq,
         MIN(time) AS first_time,
         MAX(CASE WHEN type = 'session.ended' THEN time END) AS ended,
         SUM(CASE WHEN type = 'statement' THEN 1 ELSE 0 END) AS statements,
         SUM(CASE WHEN type = 'policy.blocked' THEN 1 ELSE 0 END) AS blocked,
         SUM(CASE WHEN type = 'statement' AND decision = 'deny' THEN 1 ELSE 0 END) AS denied
       FROM audit_records WHERE ${where.join(' AND ')}
       GROUP BY session ${having.length ? `HAVING ${having.join(' AND ')}` : ''}
       ORDER BY MIN(time) DESC LIMIT ?`,
      params,
    );
    if (groups.length === 0) return [];
    // Identity and source come from each session's first record (session.started when present).
    const firsts = await this.db.query<Row>(
      `SELECT record FROM audit_records WHERE seq IN (${groups.map(() => '?').join(', ')})`,
      groups.map((g) => num(g.first_seq)),
    );
    const bySession = new Map(firsts.map((r) => json<AuditRecord>(r.record)).map((r) => [r.session, r]));
    return groups.map((g) => {
      const first = bySession.get(String(g.session));
      return {
        id: String(g.session),
        identity: first?.identity,
        connection: first?.connection,
        source: first?.source,
        ...(typeof first?.data?.client === 'string' ? { client: first.data.client } : {}),
        started: String(g.first_time),
        ended: opt(g.ended as string | null),
        statements: num(g.statements),
        // The statement gate writes both a `statement` (decision deny) and a `policy.blocked` record for
        // one refusal; other writers may write only one of them. Each refusal counts once either way.
        denied: Math.max(num(g.denied), num(g.blocked)),
      };
    });
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    await this.db.run(
      'INSERT INTO audit_checkpoints (seq, key_id, hash, time, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq, key_id) DO NOTHING',
      [cp.seq, cp.key_id, cp.hash, cp.time, cp.signature],
    );
  }

  async listCheckpoints(range: { fromSeq?: number; throughSeq?: number } = {}): Promise<Checkpoint[]> {
    const rows = await this.db.query<Row>(
      'SELECT seq, key_id, hash, time, signature FROM audit_checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq, key_id',
      [range.fromSeq ?? 0, range.throughSeq ?? Number.MAX_SAFE_INTEGER],
    );
    return rows.map((r) => ({
      seq: num(r.seq),
      hash: String(r.hash),
      time: String(r.time),
      key_id: String(r.key_id),
      signature: String(r.signature),
    }));
  }

  deleteCheckpointsBefore(seq: number): Promise<number> {
    return this.db.run('DELETE FROM audit_checkpoints WHERE seq < ?', [seq]);
  }

  async putSigningKey(key: SigningPublicKey): Promise<void> {
    await this.db.run(
      'INSERT INTO signing_keys (key_id, public_key, created_at, retired_at) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING',
      [key.key_id, key.public_key, key.created_at, key.retired_at ?? null],
    );
  }

  async retireSigningKey(keyId: string, at: string): Promise<void> {
    await this.db.run('UPDATE signing_keys SET retired_at = ? WHERE key_id = ? AND retired_at IS NULL', [
      at,
      keyId,
    ]);
  }

  async listSigningKeys(): Promise<SigningPublicKey[]> {
    const rows = await this.db.query<Row>(
      'SELECT key_id, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at, key_id',
    );
    return rows.map((r) => ({
      key_id: String(r.key_id),
      public_key: String(r.public_key),
      created_at: String(r.created_at),
      retired_at: opt(r.retired_at as string | null),
    }));
  }

  async getSinkCursor(name: string): Promise<number> {
    const rows = await this.db.query<Row>('SELECT seq FROM sink_cursors WHERE name = ?', [name]);
    return rows[0] ? num(rows[0].seq) : 0;
  }

  async setSinkCursor(name: string, seq: number): Promise<void> {
    await this.db.run(
      'INSERT INTO sink_cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq',
      [name, seq],
    );
  }

  // --- approvals ---------------------------------------------------------------------------------

  async createApproval(a: NewApproval): Promise<Approval> {
    const rows = await this.db.query<Row>(
      `INSERT INTO approvals (status, requester, requester_subject, connection, session, statement, statement_hash,
         params, rule, policy, approvers, approvals_required, decisions, created_at, expires_at, mode, statement_id)
       VALUES ('pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?, ?) RETURNING *`,
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
      ],
    );
    return approvalOf(rows[0]!);
  }

  async getApproval(id: number): Promise<Approval | undefined> {
    const rows = await this.db.query<Row>('SELECT * FROM approvals WHERE id = ?', [id]);
    return rows[0] ? approvalOf(rows[0]) : undefined;
  }

  async listApprovals(filter: { status?: ApprovalStatus; connection?: string } = {}): Promise<Approval[]> {
    const where = whereEquals({ status: filter.status, connection: filter.connection });
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

  close(): Promise<void> {
    return this.db.close();
  }
}
