/**
 * The gateway's persistent state, split by concern into small interfaces — the audit log (AuditStore),
 * the replicas sharing the store (ReplicaStore), approvals, identities, time-boxed grants — that `Store`
 * unites. Each module asks for the part it uses. Two implementations share all SQL (sql-store.ts,
 * sql-audit.ts): SQLite (one gateway) and PostgreSQL (several replicas).
 */
import type { AuditRecord, Checkpoint, SessionSummary, SigningPublicKey } from '../../src/shared/audit.js';
import type { ApprovalStore, GrantStore } from '../approvals/model.js';
import type { IdentityStore } from '../identities/model.js';
import type { ChainWriterHandle, ChainWriterOptions } from './chain-writer.js';

/** The newest record: what the next one chains onto. seq 0 and the genesis hash when the chain is empty. */
export interface ChainHead {
  seq: number;
  hash: string;
  /** The newest record's time (absent when the chain has no records). */
  time?: string;
}

/** A chain the store holds: one per replica (per generation), plus `legacy` for a store older than chains. */
export interface ChainInfo {
  chain: string;
  replica: string;
  created_at?: string;
  /** Set when another replica closed it (its writer stopped heartbeating). */
  closed_at?: string;
  closed_by?: string;
  head: ChainHead;
}

/** Where a listing across chains resumes: after this record in (time, chain, seq) order. */
export interface RecordCursor {
  time: string;
  chain: string;
  seq: number;
}

export interface RecordQuery {
  /** One chain only (then afterSeq/throughSeq apply and the order is seq); else every chain in time order. */
  chain?: string;
  /** Records with seq > afterSeq (with `chain`). */
  afterSeq?: number;
  /** Records with seq <= throughSeq (with `chain`). */
  throughSeq?: number;
  /** Across chains: records after this one. */
  after?: RecordCursor;
  /** RFC 3339 bounds on `time`: since inclusive, until exclusive. */
  since?: string;
  until?: string;
  session?: string;
  /** Only records of this type. */
  type?: string;
  /** Default 1000. */
  limit?: number;
  /** Newest first. */
  descending?: boolean;
}

/** A replica's row: who it is, which chain it writes, when it last said it was alive. */
export interface ReplicaInfo {
  replica: string;
  /** Random per process: tells a restarted replica from another process using the same id. */
  instance: string;
  chain: string;
  host?: string;
  pid?: number;
  version?: string;
  started_at: string;
  heartbeat_at: string;
  stopped_at?: string;
  /** Set by the replica that found it dead. */
  lost_at?: string;
  lost_by?: string;
}

export interface SessionQuery {
  since?: string;
  until?: string;
  /** Identity subject. */
  subject?: string;
  connection?: string;
  limit?: number;
}

// Domain types live with their domain; re-exported for the modules that took them from here.
export type {
  Approval,
  ApprovalDecision,
  ApprovalMode,
  ApprovalPatch,
  ApprovalStatus,
  ApprovalStore,
  Grant,
  GrantPatch,
  GrantStatus,
  GrantStore,
  NewApproval,
  NewGrant,
} from '../approvals/model.js';
export type { IdentityEntry, IdentityStore } from '../identities/model.js';

/** What the chain writer is told about this store's backend (store/chain-writer.ts). */
export type WriterBackend = Pick<ChainWriterOptions, 'backend' | 'target' | 'pragmas' | 'durability'>;

/** The audit log's tables: chains of records, checkpoints, the informational key list, sink cursors. */
export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the gateway keeps files of its own (signing key, head journal): the store directory, or the gateway's data dir. */
  readonly dataDir: string;

  /** A writer thread committing one chain's appends (store/chain-writer.ts). */
  openChainWriter(options: Omit<ChainWriterOptions, keyof WriterBackend>): ChainWriterHandle;
  /** The chain's newest record; with none, its newest checkpoint (a purge left it as the anchor); else genesis. */
  chainHead(chain: string): Promise<ChainHead>;
  /** Every chain with its head (`legacy` only when the store has records or checkpoints from before chains). */
  listChains(): Promise<ChainInfo[]>;
  /** Note a new chain (idempotent). */
  registerChain(chain: string, replica: string, at: string): Promise<void>;
  /** Mark a chain closed (its replica is gone); false when it already was. */
  closeChain(chain: string, by: string, at: string): Promise<boolean>;

  /** Ordered by seq within one chain, else by (time, chain, seq). */
  listRecords(query?: RecordQuery): Promise<AuditRecord[]>;
  /** Delete the chain's records with seq <= seq (retention). Returns how many. */
  deleteRecordsThrough(chain: string, seq: number): Promise<number>;
  listSessions(query?: SessionQuery): Promise<SessionSummary[]>;

  addCheckpoint(checkpoint: Checkpoint): Promise<void>;
  /** Ordered by chain, seq; bounds inclusive; every chain unless one is named. */
  listCheckpoints(range?: { chain?: string; fromSeq?: number; throughSeq?: number }): Promise<Checkpoint[]>;
  /** Checkpoints of every chain in the order they were stored, after the position `afterId` (sinks). */
  listCheckpointsAfter(afterId: number, limit: number): Promise<{ id: number; checkpoint: Checkpoint }[]>;
  /** Delete the chain's checkpoints with seq < seq (retention keeps the anchor). */
  deleteCheckpointsBefore(chain: string, seq: number): Promise<number>;

  /** Register a public key (idempotent). Informational: verification never trusts these. */
  putSigningKey(key: SigningPublicKey): Promise<void>;
  retireSigningKey(keyId: string, at: string): Promise<void>;
  listSigningKeys(): Promise<SigningPublicKey[]>;

  /** The last position a sink delivered (0 if never). */
  getSinkCursor(name: string): Promise<number>;
  setSinkCursor(name: string, seq: number): Promise<void>;
}

/** The replicas sharing a store: registration, heartbeats, and finding the ones that died. */
export interface ReplicaStore {
  getReplica(replica: string): Promise<ReplicaInfo | undefined>;
  /** Insert or take over the replica's row (a restart of the same replica). */
  upsertReplica(info: ReplicaInfo): Promise<void>;
  /** Refresh heartbeat_at if this instance still owns the row; false when another took it over. */
  heartbeat(replica: string, instance: string, at: string): Promise<boolean>;
  markReplicaStopped(replica: string, instance: string, at: string): Promise<void>;
  /** Replicas that are neither stopped nor lost and whose heartbeat is older than `before`. */
  listSilentReplicas(before: string): Promise<ReplicaInfo[]>;
  /** Compare-and-set: mark it lost only if it is still silent since `before`; true for the one that won. */
  markReplicaLost(replica: string, heartbeatBefore: string, by: string, at: string): Promise<boolean>;
  listReplicas(): Promise<ReplicaInfo[]>;
}

/** Everything, as main.ts opens it; modules take the parts they need. */
export interface Store extends AuditStore, ReplicaStore, ApprovalStore, IdentityStore, GrantStore {
  close(): Promise<void>;
}
