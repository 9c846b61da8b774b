/**
 * The store and the audit log: open (and migrate) the store, start the log with its checkpoints, sinks and
 * retention, announce fail-open loudly, record `gateway.started`. Adds the `store` and `signing_key`
 * readiness checks and reports commits and appends to the metrics.
 */
import type { AuditRecordInput } from '../../src/shared/audit.js';
import { type AuditLog, type RunningAudit, startAudit } from '../audit/index.js';
import { fixedCheck, ProbeCheck } from '../ops/health.js';
import { type GatewayMetrics, noMetrics, secondsSince } from '../ops/metrics.js';
import { recordConfigLoaded } from '../report/config-loaded.js';
import { openStore, type Store } from '../store/index.js';
import type { GatewayContext } from './context.js';

export interface AuditParts {
  store: Store;
  running: RunningAudit;
  /** The log every module appends to (instrumented when metrics are on). */
  log: AuditLog;
  /** Append without failing the caller: for records about events, not statements (errors are logged). */
  recordQuietly(input: AuditRecordInput): Promise<unknown>;
}

/** The readiness probe writes this sink-cursor row: a real write through the store's own transaction path. */
const READINESS_ROW = 'hoop.readiness';

export async function buildAudit(ctx: GatewayContext): Promise<AuditParts> {
  const { config } = ctx;
  const store = await openStore(config.store, { baseDir: ctx.baseDir, durability: config.audit.durability });
  try {
    return await startAuditOn(ctx, store);
  } catch (err) {
    // The store is this function's to close until it hands it over (a PostgreSQL pool keeps the process up).
    await store.close().catch(() => {});
    throw err;
  }
}

async function startAuditOn(ctx: GatewayContext, store: Store): Promise<AuditParts> {
  const { config, logger, metrics } = ctx;
  const storeCheck = new ProbeCheck('store', () => store.setSinkCursor(READINESS_ROW, Date.now()), {
    onChange: (state) =>
      state.ok
        ? logger.info('store writable again')
        : logger.error({ err: state.message }, 'store not writable'),
  });
  const running = await startAudit(store, config, {
    baseDir: ctx.baseDir,
    version: ctx.version,
    onError: (err) => logger.error({ err: err.message }, 'audit background task failed'),
    onWarning: (message) => logger.warn(message),
    // A chain head this gateway did not write: loud, on the log and on stderr (docs/audit.md, "Alarms").
    onAlarm: (alarm) => {
      logger.fatal({ chain: alarm.chain, written: alarm.written, found: alarm.found }, alarm.message);
      process.stderr.write(`\n*** AUDIT ALARM: ${alarm.message} ***\n\n`);
    },
    onCommit: (records, seconds, error) => {
      metrics.auditCommitted(records, seconds, error !== undefined);
      if (error) storeCheck.fail(error.message);
    },
  });
  const log = instrumentLog(running.log, metrics);
  log.onAppend((head) => metrics.chainHead(head.seq, running.replica.id));
  await storeCheck.start();
  ctx.readiness.add(storeCheck).add(fixedCheck('signing_key', { ok: true }));
  ctx.services.add('store probe', () => storeCheck.stop());
  logger.info(
    { replica: running.replica.id, chain: running.log.chain, key_id: running.signingKeyId },
    'audit chain open',
  );

  if (config.audit.fail_open) {
    logger.warn('audit.fail_open is true: statements will run even when the audit log cannot be written');
    process.stderr.write(
      '\n*** WARNING: audit.fail_open is on — statements may run UNRECORDED if the store fails ***\n\n',
    );
  }
  await recordConfigLoaded(store, log, config, ctx.configFile);
  await log.append({
    type: 'gateway.started',
    data: {
      version: ctx.version,
      fail_open: config.audit.fail_open,
      connections: config.connections.map((c) => c.name),
    },
  });
  const recordQuietly = (input: AuditRecordInput) =>
    log.append(input).catch((err: Error) => logger.error({ err: err.message }, 'audit append failed'));
  return { store, running, log, recordQuietly };
}

/** Count a statement record (one statement, one `statement` record: where the gate's decision is final). */
function countStatement(metrics: GatewayMetrics, input: AuditRecordInput): void {
  if (input.type !== 'statement') return;
  const data = input.data as { class?: string | null; decision?: string };
  metrics.statement(input.connection ?? '', data.class ?? null, data.decision ?? '', input.identity?.subject);
}

/**
 * The log with metrics: each record's type and wait (enqueue until durable), and each statement record's
 * connection, class and decision. Group commits are counted by the log itself (onCommit).
 */
export function instrumentLog(log: AuditLog, metrics: GatewayMetrics): AuditLog {
  if (metrics === noMetrics) return log;
  // Every member delegated by name (no spread): when AuditLog grows, this fails to compile until forwarded.
  return {
    get chain() {
      return log.chain;
    },
    get replica() {
      return log.replica;
    },
    get durableLsn() {
      return log.durableLsn;
    },
    get alarm() {
      return log.alarm;
    },
    head: () => log.head(),
    onAppend: (listener) => log.onAppend(listener),
    onCheckpoint: (listener) => log.onCheckpoint(listener),
    seal: (force) => log.seal(force),
    close: () => log.close(),
    whenDurable: (lsn, callback) => log.whenDurable(lsn, callback),
    enqueue(input) {
      const started = performance.now();
      const lsn = log.enqueue(input);
      countStatement(metrics, input);
      log.whenDurable(lsn, (err) =>
        metrics.auditAppended(input.type, secondsSince(started), err !== undefined),
      );
      return lsn;
    },
    append(input) {
      const started = performance.now();
      const appended = log.append(input);
      countStatement(metrics, input);
      appended.then(
        () => metrics.auditAppended(input.type, secondsSince(started), false),
        () => metrics.auditAppended(input.type, secondsSince(started), true),
      );
      return appended;
    },
  };
}
