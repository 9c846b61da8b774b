/**
 * The audit log's queries, over either SQL backend: one hash chain per replica in chain_records (and its
 * checkpoints in chain_checkpoints), plus the single chain of stores older than chains, read as the chain
 * `legacy` (audit_records, audit_checkpoints). Reads across chains go through the view audit_log.
 * Appends do not go through here: each chain's writer thread commits them (chain-writer.ts).
 */
import type { AuditRecord, Checkpoint, SessionSummary, SigningPublicKey } from '../../src/shared/audit.js';
import { chainOf, GENESIS_HASH, LEGACY_CHAIN } from '../../src/shared/audit.js';
import { canonicalJson } from '../../src/shared/audit-chain.js';
import { type ChainWriterHandle, type ChainWriterOptions, openChainWriter } from './chain-writer.js';
import type { SqlDriver } from './driver.js';
import { LOCKS } from './driver.js';
import type { AuditStore, ChainHead, ChainInfo, RecordQuery, SessionQuery, WriterBackend } from './types.js';

type Row = Record<string, unknown>;

const num = (v: unknown): number => Number(v);
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const json = <T>(v: unknown): T => JSON.parse(String(v)) as T;

/** Every chain that has records, one index seek per chain (a loose index scan; no full scan). */
const CHAINS_WITH_RECORDS = `WITH RECURSIVE c(chain) AS (
    SELECT MIN(chain) FROM chain_records
    UNION ALL
    SELECT (SELECT MIN(chain) FROM chain_records WHERE chain > c.chain) FROM c WHERE c.chain IS NOT NULL)
  SELECT chain FROM c WHERE chain IS NOT NULL`;

function checkpointOfRow(row: Row): Checkpoint {
  return json<Checkpoint>(row.checkpoint);
}

function legacyCheckpointOfRow(row: Row): Checkpoint {
  return {
    seq: num(row.seq),
    hash: String(row.hash),
    time: String(row.time),
    key_id: String(row.key_id),
    signature: String(row.signature),
  };
}

export class SqlAuditStore implements AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Writers opened on this store: closed with it, so nothing appends to a closed store. */
  protected readonly writers = new Set<ChainWriterHandle>();

  constructor(
    protected readonly db: SqlDriver,
    readonly dataDir: string,
  ) {
    this.kind = db.dialect;
  }

  /** The legacy chain's records keep their hash inside the JSON text only. */
  private get legacyHash(): string {
    return this.db.dialect === 'sqlite' ? "json_extract(record, '$.hash')" : "(record::json ->> 'hash')";
  }

  openChainWriter(options: Omit<ChainWriterOptions, keyof WriterBackend>): ChainWriterHandle {
    const writer = openChainWriter({ ...this.db.writer, ...options });
    this.writers.add(writer);
    return writer;
  }

  /** Close the writers still open (their queued batches commit first). */
  protected async closeWriters(): Promise<void> {
    await Promise.all([...this.writers].map((w) => w.close()));
    this.writers.clear();
  }

  async chainHead(chain: string): Promise<ChainHead> {
    const legacy = chain === LEGACY_CHAIN;
    const records = legacy
      ? await this.db.query<Row>(
          `SELECT seq, ${this.legacyHash} AS hash, time FROM audit_records ORDER BY seq DESC LIMIT 1`,
        )
      : await this.db.query<Row>(
          'SELECT seq, hash, time FROM chain_records WHERE chain = ? ORDER BY seq DESC LIMIT 1',
          [chain],
        );
    if (records[0]) {
      return { seq: num(records[0].seq), hash: String(records[0].hash), time: String(records[0].time) };
    }
    // After a purge of every record, the chain continues from its anchoring checkpoint. An alarm
    // checkpoint names the head the gateway wrote, not one the store holds: it anchors nothing.
    const anchors = legacy
      ? await this.db.query<Row>('SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1')
      : await this.db.query<Row>(
          `SELECT seq, hash FROM chain_checkpoints WHERE chain = ? AND checkpoint NOT LIKE '%"alarm":{%' ORDER BY seq DESC, id DESC LIMIT 1`,
          [chain],
        );
    if (anchors[0]) return { seq: num(anchors[0].seq), hash: String(anchors[0].hash) };
    return { seq: 0, hash: GENESIS_HASH };
  }

  async listChains(): Promise<ChainInfo[]> {
    const registered = await this.db.query<Row>('SELECT * FROM audit_chains ORDER BY chain');
    const names = new Map<string, Row | undefined>(registered.map((r) => [String(r.chain), r]));
    // Chains nobody registered still have records: list them too (verification must see everything).
    for (const r of await this.db.query<Row>(CHAINS_WITH_RECORDS)) {
      if (!names.has(String(r.chain))) names.set(String(r.chain), undefined);
    }
    const legacyUsed = await this.db.query<Row>(
      'SELECT 1 AS x FROM audit_records UNION ALL SELECT 1 FROM audit_checkpoints LIMIT 1',
    );
    if (legacyUsed.length) names.set(LEGACY_CHAIN, undefined);
    const chains: ChainInfo[] = [];
    for (const [chain, row] of names) {
      chains.push({
        chain,
        replica: row ? String(row.replica) : chain,
        created_at: opt(row?.created_at as string | null | undefined),
        closed_at: opt(row?.closed_at as string | null | undefined),
        closed_by: opt(row?.closed_by as string | null | undefined),
        head: await this.chainHead(chain),
      });
    }
    return chains.sort((a, b) => a.chain.localeCompare(b.chain));
  }

  async registerChain(chain: string, replica: string, at: string): Promise<void> {
    await this.db.run(
      'INSERT INTO audit_chains (chain, replica, created_at) VALUES (?, ?, ?) ON CONFLICT (chain) DO NOTHING',
      [chain, replica, at],
    );
  }

  async closeChain(chain: string, by: string, at: string): Promise<boolean> {
    const changed = await this.db.run(
      'UPDATE audit_chains SET closed_at = ?, closed_by = ? WHERE chain = ? AND closed_at IS NULL',
      [at, by, chain],
    );
    return changed > 0;
  }

  async listRecords(query: RecordQuery = {}): Promise<AuditRecord[]> {
    if (query.session !== undefined && query.chain === undefined) return this.sessionRecords(query);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      where.push(clause);
      params.push(...values);
    };
    let table = 'audit_log';
    let order = 'time, chain, seq';
    if (query.chain !== undefined) {
      order = 'seq';
      if (query.chain === LEGACY_CHAIN) table = 'audit_records';
      else {
        table = 'chain_records';
        add('chain = ?', query.chain);
      }
      if (query.afterSeq !== undefined) add('seq > ?', query.afterSeq);
      if (query.throughSeq !== undefined) add('seq <= ?', query.throughSeq);
    } else if (query.after) {
      const { time, chain, seq } = query.after;
      const cmp = query.descending ? '<' : '>';
      add(
        `(time ${cmp} ? OR (time = ? AND (chain ${cmp} ? OR (chain = ? AND seq ${cmp} ?))))`,
        time,
        time,
        chain,
        chain,
        seq,
      );
    }
    if (query.since) add('time >= ?', query.since);
    if (query.until) add('time < ?', query.until);
    if (query.session) add('session = ?', query.session);
    if (query.type) add('type = ?', query.type);
    params.push(query.limit ?? 1000);
    const direction = query.descending ? ' DESC' : '';
    const rows = await this.db.query<Row>(
      `SELECT record FROM ${table} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY ${order
         .split(', ')
         .map((c) => c + direction)
         .join(', ')} LIMIT ?`,
      params,
    );
    return rows.map((r) => json<AuditRecord>(r.record));
  }

  /**
   * One session's records: its chain and seq range come from audit_sessions (the chain writer notes
   * each session once), then the range is read by primary key; the legacy chain has a session index.
   */
  private async sessionRecords(query: RecordQuery): Promise<AuditRecord[]> {
    const rows = await this.db.query<Row>('SELECT record FROM audit_records WHERE session = ?', [
      query.session,
    ]);
    for (const at of await this.db.query<Row>(
      'SELECT chain, first_seq, last_seq FROM audit_sessions WHERE session = ?',
      [query.session],
    )) {
      const last = at.last_seq === null ? Number.MAX_SAFE_INTEGER : num(at.last_seq);
      rows.push(
        ...(await this.db.query<Row>(
          'SELECT record FROM chain_records WHERE chain = ? AND seq >= ? AND seq <= ? AND session = ?',
          [at.chain, num(at.first_seq), last, query.session],
        )),
      );
    }
    const key = (r: AuditRecord) => [r.time, chainOf(r), r.seq] as const;
    const before = (a: readonly [string, string, number], b: readonly [string, string, number]) =>
      a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];
    let records = rows
      .map((r) => json<AuditRecord>(r.record))
      .sort((a, b) => (before(key(a), key(b)) ? -1 : 1));
    if (query.descending) records.reverse();
    const after = query.after;
    if (after) {
      const cursor = [after.time, after.chain, after.seq] as const;
      records = records.filter((r) => (query.descending ? before(key(r), cursor) : before(cursor, key(r))));
    }
    if (query.since) records = records.filter((r) => r.time >= query.since!);
    if (query.until) records = records.filter((r) => r.time < query.until!);
    if (query.type) records = records.filter((r) => r.type === query.type);
    return records.slice(0, query.limit ?? 1000);
  }

  deleteRecordsThrough(chain: string, seq: number): Promise<number> {
    if (chain === LEGACY_CHAIN) {
      // Gateways of the previous version may still append to the legacy chain: take their lock.
      return this.db.transaction(
        (tx) => tx.run('DELETE FROM audit_records WHERE seq <= ?', [seq]),
        LOCKS.auditAppend,
      );
    }
    return this.db.transaction(async (tx) => {
      // Sessions wholly purged go too; one that straddles the cut keeps its row (its first seq now purged).
      await tx.run('DELETE FROM audit_sessions WHERE chain = ? AND last_seq <= ?', [chain, seq]);
      return tx.run('DELETE FROM chain_records WHERE chain = ? AND seq <= ?', [chain, seq]);
    });
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
    // A session lives on one replica, so in one chain.
    const groups = await this.db.query<Row>(
      `SELECT session, chain,
         MIN(seq) AS first_seq,
         MIN(time) AS first_time,
         MAX(CASE WHEN type = 'session.ended' THEN time END) AS ended,
         SUM(CASE WHEN type = 'statement' THEN 1 ELSE 0 END) AS statements,
         SUM(CASE WHEN type = 'policy.blocked' THEN 1 ELSE 0 END) AS blocked,
         SUM(CASE WHEN type = 'statement' AND decision = 'deny' THEN 1 ELSE 0 END) AS denied
       FROM audit_log WHERE ${where.join(' AND ')}
       GROUP BY session, chain ${having.length ? `HAVING ${having.join(' AND ')}` : ''}
       ORDER BY MIN(time) DESC LIMIT ?`,
      params,
    );
    if (groups.length === 0) return [];
    const firsts = await this.firstRecords(
      groups.map((g) => ({ chain: String(g.chain), seq: num(g.first_seq) })),
    );
    return groups.map((g) => {
      const first = firsts.get(`${g.chain}\u0000${num(g.first_seq)}`);
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

  /** Records by (chain, seq), one query per chain, keyed `chain\0seq`. */
  private async firstRecords(keys: { chain: string; seq: number }[]): Promise<Map<string, AuditRecord>> {
    const byChain = new Map<string, number[]>();
    for (const k of keys) byChain.set(k.chain, [...(byChain.get(k.chain) ?? []), k.seq]);
    const out = new Map<string, AuditRecord>();
    for (const [chain, seqs] of byChain) {
      const marks = seqs.map(() => '?').join(', ');
      const rows =
        chain === LEGACY_CHAIN
          ? await this.db.query<Row>(`SELECT seq, record FROM audit_records WHERE seq IN (${marks})`, seqs)
          : await this.db.query<Row>(
              `SELECT seq, record FROM chain_records WHERE chain = ? AND seq IN (${marks})`,
              [chain, ...seqs],
            );
      for (const r of rows) out.set(`${chain}\u0000${num(r.seq)}`, json<AuditRecord>(r.record));
    }
    return out;
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    if (cp.chain === undefined) {
      await this.db.run(
        'INSERT INTO audit_checkpoints (seq, key_id, hash, time, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq, key_id) DO NOTHING',
        [cp.seq, cp.key_id, cp.hash, cp.time, cp.signature],
      );
      return;
    }
    await this.db.run(
      'INSERT INTO chain_checkpoints (chain, seq, key_id, hash, time, checkpoint) VALUES (?, ?, ?, ?, ?, ?)',
      [cp.chain, cp.seq, cp.key_id, cp.hash, cp.time, canonicalJson(cp)],
    );
  }

  async listCheckpoints(
    range: { chain?: string; fromSeq?: number; throughSeq?: number } = {},
  ): Promise<Checkpoint[]> {
    const from = range.fromSeq ?? 0;
    const through = range.throughSeq ?? Number.MAX_SAFE_INTEGER;
    const out: Checkpoint[] = [];
    if (range.chain === undefined || range.chain === LEGACY_CHAIN) {
      const rows = await this.db.query<Row>(
        'SELECT seq, key_id, hash, time, signature FROM audit_checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq, key_id',
        [from, through],
      );
      out.push(...rows.map(legacyCheckpointOfRow));
    }
    if (range.chain !== LEGACY_CHAIN) {
      const rows = await this.db.query<Row>(
        `SELECT checkpoint FROM chain_checkpoints WHERE ${range.chain === undefined ? '' : 'chain = ? AND '}seq >= ? AND seq <= ?
         ORDER BY chain, seq, id`,
        range.chain === undefined ? [from, through] : [range.chain, from, through],
      );
      out.push(...rows.map(checkpointOfRow));
    }
    return out;
  }

  async listCheckpointsAfter(
    afterId: number,
    limit: number,
  ): Promise<{ id: number; checkpoint: Checkpoint }[]> {
    const rows = await this.db.query<Row>(
      'SELECT id, checkpoint FROM chain_checkpoints WHERE id > ? ORDER BY id LIMIT ?',
      [afterId, limit],
    );
    return rows.map((r) => ({ id: num(r.id), checkpoint: checkpointOfRow(r) }));
  }

  deleteCheckpointsBefore(chain: string, seq: number): Promise<number> {
    if (chain === LEGACY_CHAIN) return this.db.run('DELETE FROM audit_checkpoints WHERE seq < ?', [seq]);
    return this.db.run('DELETE FROM chain_checkpoints WHERE chain = ? AND seq < ?', [chain, seq]);
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
}
