/**
 * The audit subsystem as main.ts starts it: the signing key, the log (group commit, checkpoints), the
 * SIEM sinks and the retention timer, from the configuration. Returns the log and one close().
 */
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { Store } from '../store/types.js';
import { loadOrCreateSigningKey } from './checkpoint.js';
import { type AuditLog, createAuditLog } from './log.js';
import { startRetention } from './retention.js';
import { sinksFromConfig, startSinks } from './sinks.js';

export interface RunningAudit {
  log: AuditLog;
  /** The key checkpoints are signed with (readiness reports it loaded). */
  signingKeyId: string;
  /** Stop sinks and retention, flush and seal the log. The store stays open. */
  close(): Promise<void>;
}

export async function startAudit(
  store: Store,
  config: Pick<GatewayConfig, 'audit' | 'retention'>,
  options: {
    onError?: (err: Error) => void;
    /** Relative file-sink paths resolve against this (the configuration file's directory), as store.path does. */
    baseDir?: string;
    /** After each group commit (metrics, readiness): see AuditLogOptions.onCommit. */
    onCommit?: (records: number, seconds: number, error?: Error) => void;
  } = {},
): Promise<RunningAudit> {
  const onError = options.onError ?? (() => {});
  const signingKey = loadOrCreateSigningKey({
    dataDir: store.dataDir,
    keyFile: config.audit.signing_key_file,
  });
  const log = await createAuditLog(store, {
    signingKey,
    checkpoint: { every: config.audit.checkpoint_every, intervalMs: config.audit.checkpoint_interval },
    onError,
    onCommit: options.onCommit,
  });
  const sinks = startSinks(store, log, sinksFromConfig(config.audit.sinks, process.env, options.baseDir), {
    onError: (sink, err) => onError(new Error(`audit sink ${sink}: ${err.message}`)),
  });
  const retention = startRetention(store, log, { days: config.retention.days, onError });
  return {
    log,
    signingKeyId: signingKey.keyId,
    async close() {
      retention.stop();
      await sinks.stop();
      await log.close();
    },
  };
}

export type { AuditLog } from './log.js';
export { AuditWriteError, createAuditLog } from './log.js';
