/**
 * The audit subsystem as main.ts starts it: the replica's identity and heartbeat, the signing key and the
 * keys verification trusts, the log (its own chain, group commit, checkpoints), the sinks (SIEM and
 * witness), retention, and the counting of unauthenticated failures — from the configuration.
 */
import { randomUUID } from 'node:crypto';
import type { TrustedKey, VerifyResult } from '../../src/shared/audit.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Store } from '../store/types.js';
import { type AuthFailureRecorder, createAuthFailureRecorder } from './auth-failures.js';
import { loadOrCreateSigningKey, type SigningKey } from './checkpoint.js';
import { type Alarm, type AuditLog, createAuditLog } from './log.js';
import {
  claimReplicaId,
  explicitReplicaId,
  freeDefaultReplicaId,
  type RunningReplica,
  replicaIdOf,
  startReplica,
} from './replicas.js';
import { startRetention } from './retention.js';
import { sinksFromConfig, startSinks } from './sinks.js';
import { loadTrustedKeys } from './trusted-keys.js';
import { verifyStoredLog } from './verify.js';

export interface RunningAudit {
  log: AuditLog;
  replica: RunningReplica;
  signingKey: SigningKey;
  /** The keys this gateway's verification trusts (its own, its retired ones, audit.trusted_keys). */
  trustedKeys: TrustedKey[];
  /** Failed authentications without an identity, counted per source and window. */
  authFailures: AuthFailureRecorder;
  /** Seal, then verify every chain with the pinned keys (GET /v1/audit/verify). */
  verify(): Promise<VerifyResult>;
  /** The key checkpoints are signed with (readiness reports it loaded). */
  signingKeyId: string;
  /** Stop sinks, retention and heartbeats, flush and seal the log. The store stays open. */
  close(): Promise<void>;
}

type AuditConfig = Pick<GatewayConfig, 'audit' | 'retention'> & Partial<Pick<GatewayConfig, 'replica'>>;
export async function startAudit(
  store: Store,
  config: AuditConfig,
  options: {
    onError?: (err: Error) => void;
    /** A foreign chain head (docs/audit.md, "Alarms"): log it loudly. */
    onAlarm?: (alarm: Alarm) => void;
    onWarning?: (message: string) => void;
    /** Relative file paths (sinks, trusted keys) resolve against this (the configuration file's directory). */
    baseDir?: string;
    version?: string;
    /** After each group commit (metrics, readiness): see AuditLogOptions.onCommit. */
    onCommit?: (records: number, seconds: number, error?: Error) => void;
  } = {},
): Promise<RunningAudit> {
  const onError = options.onError ?? (() => {});
  const signingKey = loadOrCreateSigningKey({
    dataDir: store.dataDir,
    keyFile: config.audit.signing_key_file,
  });
  const trustedKeys = loadTrustedKeys({
    signingKey,
    dataDir: store.dataDir,
    files: config.audit.trusted_keys,
    baseDir: options.baseDir,
  });
  const instance = randomUUID();
  const defaultId = replicaIdOf(config, store);
  const replicaOptions = {
    id: explicitReplicaId(config) ?? (await freeDefaultReplicaId(store, defaultId, instance)),
    instance,
    heartbeatMs: config.replica?.heartbeat ?? 2000,
    lostAfterMs: config.replica?.lost_after ?? 10_000,
    version: options.version,
    onError,
    onWarning: options.onWarning,
  };
  await claimReplicaId(store, replicaOptions);
  const log = await createAuditLog(store, {
    replica: replicaOptions.id,
    signingKey,
    trustedKeys,
    checkpoint: { every: config.audit.checkpoint_every, intervalMs: config.audit.checkpoint_interval },
    onForeignHead: config.audit.on_foreign_head,
    onAlarm: options.onAlarm,
    onWarning: options.onWarning,
    onError,
    onCommit: options.onCommit,
  });
  const replica = await startReplica(store, log, replicaOptions);
  const sinks = startSinks(store, log, sinksFromConfig(config.audit.sinks, process.env, options.baseDir), {
    onError: (sink, err) => onError(new Error(`audit sink ${sink}: ${err.message}`)),
  });
  const retention = startRetention(store, log, { days: config.retention.days, onError });
  const authFailures = createAuthFailureRecorder(
    (input) => {
      log.append(input).catch((err: Error) => onError(err));
    },
    { windowMs: config.audit.auth_failures.window, maxSources: config.audit.auth_failures.max_sources },
  );
  return {
    log,
    replica,
    signingKey,
    signingKeyId: signingKey.keyId,
    trustedKeys,
    authFailures,
    verify: () =>
      verifyStoredLog(store, log, {
        trustedKeys,
        maxUnsealedMs: 2 * config.audit.checkpoint_interval,
      }),
    async close() {
      authFailures.stop();
      retention.stop();
      await replica.stop();
      await log.close();
      // The last records and the final checkpoint to the sinks, unless one is down (it resumes next start).
      await Promise.race([sinks.caughtUp(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await sinks.stop();
    },
  };
}

export type { Alarm, AuditLog } from './log.js';
export { AuditWriteError, createAuditLog } from './log.js';
