/**
 * Versioned schema migrations, applied in order at open, in one transaction under the migration lock
 * (both backends have transactional DDL), each leaving its row in schema_version. Never edit a released
 * migration: add the next one.
 */
import type { Dialect, SqlDriver } from './driver.js';
import { LOCKS } from './driver.js';

export interface Migration {
  version: number;
  name: string;
  sql(dialect: Dialect): string[];
}

/** Column types that differ between the two backends. */
function types(dialect: Dialect) {
  return dialect === 'postgres'
    ? { id: 'BIGSERIAL PRIMARY KEY', seq: 'BIGINT', int: 'BIGINT' }
    : { id: 'INTEGER PRIMARY KEY AUTOINCREMENT', seq: 'INTEGER', int: 'INTEGER' };
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'audit log, checkpoints, signing keys, sink cursors',
    sql: (dialect) => {
      const t = types(dialect);
      return [
        // The whole record is kept as its canonical JSON text (not jsonb): it must read back byte for byte
        // as it was hashed. The other columns are copies for filtering.
        `CREATE TABLE audit_records (
          seq ${t.seq} PRIMARY KEY,
          time TEXT NOT NULL,
          type TEXT NOT NULL,
          session TEXT,
          connection TEXT,
          subject TEXT,
          decision TEXT,
          record TEXT NOT NULL)`,
        'CREATE INDEX audit_records_time ON audit_records (time)',
        'CREATE INDEX audit_records_session ON audit_records (session, seq)',
        `CREATE TABLE audit_checkpoints (
          seq ${t.seq} NOT NULL,
          key_id TEXT NOT NULL,
          hash TEXT NOT NULL,
          time TEXT NOT NULL,
          signature TEXT NOT NULL,
          PRIMARY KEY (seq, key_id))`,
        `CREATE TABLE signing_keys (
          key_id TEXT PRIMARY KEY,
          public_key TEXT NOT NULL,
          created_at TEXT NOT NULL,
          retired_at TEXT)`,
        `CREATE TABLE sink_cursors (name TEXT PRIMARY KEY, seq ${t.seq} NOT NULL)`,
      ];
    },
  },
  {
    version: 2,
    name: 'approvals, identities, grants',
    sql: (dialect) => {
      const t = types(dialect);
      return [
        `CREATE TABLE approvals (
          id ${t.id},
          status TEXT NOT NULL,
          requester TEXT NOT NULL,
          requester_subject TEXT NOT NULL,
          connection TEXT NOT NULL,
          session TEXT,
          statement TEXT NOT NULL,
          statement_hash TEXT NOT NULL,
          params TEXT,
          rule TEXT NOT NULL,
          policy TEXT NOT NULL,
          approvers TEXT NOT NULL,
          approvals_required ${t.int} NOT NULL,
          decisions TEXT NOT NULL,
          created_at TEXT NOT NULL,
          expires_at TEXT NOT NULL,
          decided_at TEXT,
          used_at TEXT)`,
        'CREATE INDEX approvals_status ON approvals (status)',
        `CREATE TABLE identities (
          issuer TEXT NOT NULL,
          subject TEXT NOT NULL,
          kind TEXT NOT NULL,
          name TEXT,
          groups_json TEXT NOT NULL,
          first_seen TEXT NOT NULL,
          last_seen TEXT NOT NULL,
          revoked_at TEXT,
          revoked_reason TEXT,
          PRIMARY KEY (issuer, subject))`,
        `CREATE TABLE grants (
          id ${t.id},
          issuer TEXT NOT NULL,
          subject TEXT NOT NULL,
          connection TEXT NOT NULL,
          policy TEXT NOT NULL,
          reason TEXT NOT NULL,
          status TEXT NOT NULL,
          duration_ms ${t.int} NOT NULL,
          created_at TEXT NOT NULL,
          approved_at TEXT,
          expires_at TEXT,
          approved_by TEXT)`,
        'CREATE INDEX grants_subject ON grants (subject, status)',
      ];
    },
  },
  {
    version: 3,
    name: 'approval modes, revisions and links; grant decisions',
    sql: (dialect) => {
      const t = types(dialect);
      return [
        // wait: the statement is held in its session; deferred: filed by exec --no-wait, run later with --approval.
        "ALTER TABLE approvals ADD COLUMN mode TEXT NOT NULL DEFAULT 'wait'",
        // Bumped by every change: decisions are compare-and-set on it, so two gateways never lose a vote.
        `ALTER TABLE approvals ADD COLUMN revision ${t.int} NOT NULL DEFAULT 0`,
        'ALTER TABLE approvals ADD COLUMN statement_id TEXT',
        'ALTER TABLE approvals ADD COLUMN used_session TEXT',
        'ALTER TABLE approvals ADD COLUMN outcome_reason TEXT',
        `ALTER TABLE grants ADD COLUMN revision ${t.int} NOT NULL DEFAULT 0`,
        'ALTER TABLE grants ADD COLUMN decided_by TEXT',
        'ALTER TABLE grants ADD COLUMN decision_reason TEXT',
        'ALTER TABLE grants ADD COLUMN requester TEXT',
      ];
    },
  },
  {
    version: 4,
    name: 'a hash chain per replica, replicas and their heartbeats',
    // Additive only (docs/operations.md, "Rolling upgrades"): a gateway of version 3 keeps appending to the
    // single chain in audit_records under its advisory lock, untouched; this version writes its own chain
    // into chain_records and reads both through audit_log, where the old chain is the chain `legacy`.
    sql: (dialect) => {
      const t = types(dialect);
      return [
        `CREATE TABLE chain_records (
          chain TEXT NOT NULL,
          seq ${t.seq} NOT NULL,
          time TEXT NOT NULL,
          type TEXT NOT NULL,
          session TEXT,
          connection TEXT,
          subject TEXT,
          decision TEXT,
          hash TEXT NOT NULL,
          record TEXT NOT NULL,
          PRIMARY KEY (chain, seq))`,
        // Appends only ever add at the end of these two (seq and time grow); a per-record index on the
        // session would insert at random places, the costliest part of the write: sessions are found
        // through audit_sessions instead (one row per session, written by the chain writer).
        'CREATE INDEX chain_records_time ON chain_records (time)',
        `CREATE TABLE audit_sessions (
          session TEXT PRIMARY KEY,
          chain TEXT NOT NULL,
          first_seq ${t.seq} NOT NULL,
          last_seq ${t.seq})`,
        // The whole signed checkpoint as its canonical JSON (references and alarms included); id orders
        // them for the sinks that witness them.
        `CREATE TABLE chain_checkpoints (
          id ${t.id},
          chain TEXT NOT NULL,
          seq ${t.seq} NOT NULL,
          key_id TEXT NOT NULL,
          hash TEXT NOT NULL,
          time TEXT NOT NULL,
          checkpoint TEXT NOT NULL)`,
        'CREATE INDEX chain_checkpoints_chain ON chain_checkpoints (chain, seq)',
        `CREATE TABLE audit_chains (
          chain TEXT PRIMARY KEY,
          replica TEXT NOT NULL,
          created_at TEXT NOT NULL,
          closed_at TEXT,
          closed_by TEXT)`,
        `CREATE TABLE replicas (
          replica TEXT PRIMARY KEY,
          instance TEXT NOT NULL,
          chain TEXT NOT NULL,
          host TEXT,
          pid ${t.int},
          version TEXT,
          started_at TEXT NOT NULL,
          heartbeat_at TEXT NOT NULL,
          stopped_at TEXT,
          lost_at TEXT,
          lost_by TEXT)`,
        // Which replica holds a waiting statement: when it dies, the others withdraw the request.
        'ALTER TABLE approvals ADD COLUMN replica TEXT',
        `CREATE VIEW audit_log AS
          SELECT 'legacy' AS chain, seq, time, type, session, connection, subject, decision, record FROM audit_records
          UNION ALL
          SELECT chain, seq, time, type, session, connection, subject, decision, record FROM chain_records`,
      ];
    },
  },
  {
    version: 5,
    name: "an approval's search_path",
    // The requester's search_path at filing: shown to the reviewer, covered by the hash, used by a deferred run.
    sql: () => ['ALTER TABLE approvals ADD COLUMN search_path TEXT'],
  },
];

/** Bring the schema up to date. Safe when several gateways start at once (migration lock). */
export async function migrate(driver: SqlDriver, migrations: Migration[] = MIGRATIONS): Promise<number> {
  return driver.transaction(async (tx) => {
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const rows = await tx.query<{ v: number | string | null }>(
      'SELECT MAX(version) AS v FROM schema_version',
    );
    let current = Number(rows[0]?.v ?? 0);
    for (const m of migrations) {
      if (m.version <= current) continue;
      for (const statement of m.sql(driver.dialect)) await tx.run(statement);
      await tx.run('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)', [
        m.version,
        m.name,
        new Date().toISOString(),
      ]);
      current = m.version;
    }
    return current;
  }, LOCKS.migrate);
}
