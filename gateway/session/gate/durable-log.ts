/**
 * The audit log as the gate uses it: `enqueue` a record and get its LSN at once, then learn when it is
 * durable (`whenDurable`), so the relay can hold the statement's bytes behind that barrier instead of
 * awaiting each record. This is the interface agreed with the audit stream
 * (AuditLog.enqueue/whenDurable/durableLsn); `durableLogOver` provides it over today's `append()`
 * promise until the log implements it natively.
 */
import type { AuditRecordInput } from '../../../src/shared/audit.js';

export interface DurableLog {
  /** Queue a record for the next group commit; returns its LSN (strictly increasing). Throws on invalid input. */
  enqueue(input: AuditRecordInput): number;
  /** Call back once every record up to `lsn` is durable, or with the error of the batch that lost it. */
  whenDurable(lsn: number, callback: (err?: Error) => void): void;
  /** The highest LSN known durable. */
  readonly durableLsn: number;
  /** Append and wait (records nobody holds a statement for: results, approvals' own records). */
  append(input: AuditRecordInput): Promise<unknown>;
}

interface AppendOnly {
  append(input: AuditRecordInput): Promise<unknown>;
}

/** A log that already speaks LSNs is used as it is; otherwise an adapter over append(). */
export function durableLogOf(log: AppendOnly | DurableLog): DurableLog {
  return 'enqueue' in log && 'whenDurable' in log ? log : durableLogOver(log);
}

/**
 * LSNs over append(): each record gets the next number; a record's outcome is known when its append
 * settles, and the durable position advances over every settled record in order (appends settle in
 * queue order, one batch at a time, so waiters of one batch wake together).
 */
export function durableLogOver(log: AppendOnly): DurableLog {
  let last = 0;
  let durable = 0;
  const settled = new Map<number, Error | null>();
  /** Errors of LSNs already passed, kept until every waiter for them was told (bounded by the window). */
  const failures = new Map<number, Error>();
  const waiters: { lsn: number; callback: (err?: Error) => void }[] = [];

  const advance = () => {
    while (settled.has(durable + 1)) {
      const err = settled.get(durable + 1);
      settled.delete(durable + 1);
      durable++;
      if (err) failures.set(durable, err);
    }
    for (const lsn of failures.keys()) {
      if (lsn > durable - 10_000) break;
      failures.delete(lsn);
    }
    while (waiters.length > 0 && waiters[0]!.lsn <= durable) {
      const w = waiters.shift()!;
      w.callback(failures.get(w.lsn));
    }
  };

  return {
    enqueue(input) {
      const lsn = ++last;
      log.append(input).then(
        () => {
          settled.set(lsn, null);
          advance();
        },
        (err: Error) => {
          settled.set(lsn, err);
          advance();
        },
      );
      return lsn;
    },
    whenDurable(lsn, callback) {
      if (lsn <= durable) {
        callback(failures.get(lsn));
        return;
      }
      // Waiters are registered in LSN order by the relay; keep the list sorted for any caller.
      let i = waiters.length;
      while (i > 0 && waiters[i - 1]!.lsn > lsn) i--;
      waiters.splice(i, 0, { lsn, callback });
    },
    get durableLsn() {
      return durable;
    },
    append: (input) => log.append(input),
  };
}
