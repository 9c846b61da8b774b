/**
 * Check: the record. Every statement's record is queued in the audit log before the statement may be
 * forwarded; the verdict carries the last record's LSN and the relay holds the statement until the log
 * is durable up to it (write-ahead, group-committed). Refusals are recorded too, without a barrier:
 * nothing they concern runs.
 */
import { createHash } from 'node:crypto';
import type { AuditRecordInput } from '../../../src/shared/audit.js';
import type { ClassifiedStatement, Decision } from '../../../src/shared/statement.js';
import type { GateRequest } from '../../contracts/gate.js';
import type { SessionInfo } from '../../contracts/session.js';
import { definitionRun } from '../../sql/session-sql.js';
import type { DurableLog } from './durable-log.js';

export type RecordBody = Omit<AuditRecordInput, 'identity' | 'source' | 'connection' | 'session'>;

export class Recorder {
  private readonly base: Pick<AuditRecordInput, 'identity' | 'source' | 'connection' | 'session'>;
  private counter = 0;
  /** For each message's last LSN, its first: the barrier covers all of the message's records. */
  private readonly firstOf = new Map<number, number>();

  constructor(
    info: SessionInfo,
    private readonly log: DurableLog,
    private readonly onError: (err: Error) => void,
  ) {
    this.base = {
      identity: info.identity,
      source: info.source,
      connection: info.connection.name,
      session: info.id,
    };
    this.prefix = info.id.slice(0, 8);
  }
  private readonly prefix: string;

  nextId(): string {
    return `${this.prefix}-${++this.counter}`;
  }

  /** Queue records; returns the LSN the statement must wait for, or an error when one could not be queued. */
  enqueue(bodies: RecordBody[]): number | Error {
    let first = 0;
    let last = 0;
    try {
      for (const body of bodies) {
        last = this.log.enqueue({ ...this.base, ...body });
        first ||= last;
      }
    } catch (err) {
      this.onError(err as Error);
      return err as Error;
    }
    if (first !== last) this.firstOf.set(last, first);
    return last;
  }

  /** Queue records no statement waits for (refusals); a failure is logged. */
  enqueueQuietly(bodies: RecordBody[]): void {
    const lsn = this.enqueue(bodies);
    if (typeof lsn === 'number') this.whenDurable(lsn, (err) => err && this.onError(err));
  }

  /** Append and wait: the slow path (approvals) writes its records this way. */
  async append(body: RecordBody): Promise<boolean> {
    try {
      await this.log.append({ ...this.base, ...body });
      return true;
    } catch (err) {
      this.onError(err as Error);
      return false;
    }
  }

  /**
   * A record no statement waits for and no commit is started for (statement.result): queued like any
   * other, without a promise or the committed record handed back, and a failure is logged.
   */
  appendLazily(body: RecordBody): void {
    this.enqueueQuietly([body]);
  }

  /** Call back when every record of the message whose last LSN is `lsn` is durable, with the first error. */
  whenDurable(lsn: number, callback: (err?: Error) => void): void {
    const first = this.firstOf.get(lsn) ?? lsn;
    this.firstOf.delete(lsn);
    let remaining = lsn - first + 1;
    let failure: Error | undefined;
    for (let l = first; l <= lsn; l++) {
      this.log.whenDurable(l, (err) => {
        failure ??= err;
        if (--remaining === 0) callback(failure);
      });
    }
  }
}

/** The `statement` record's data. `runs`: what an EXECUTE, FETCH or portal runs, when it names one. */
export function statementData(
  stmt: ClassifiedStatement | undefined,
  text: string,
  decision: Decision,
  id: string,
  request: GateRequest,
) {
  const runs = stmt ? definitionRun(stmt) : undefined;
  return {
    statement_id: id,
    text: stmt?.text ?? text,
    fingerprint: stmt?.fingerprint ?? hashText(text),
    class: stmt?.class ?? null,
    kind: stmt?.kind ?? null,
    relations: stmt?.relations ?? [],
    functions: stmt?.functions ?? [],
    flags: stmt?.flags ?? [],
    // docs/audit.md: allow | deny | approve (the policy's own words; sessions list and replay read them).
    decision: decision.action,
    policy: decision.policy,
    rule: decision.rule,
    reason: decision.reason,
    protocol: request.phase === 'query' ? 'simple' : 'extended',
    prepared: request.statementName || undefined,
    portal: request.portal || undefined,
    runs: runs && runs.text !== (stmt?.text ?? text) ? runs.text : undefined,
    parameters: request.parameters?.length ? request.parameters.length : undefined,
  };
}

function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
