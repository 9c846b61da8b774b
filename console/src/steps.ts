/**
 * A session's audit records as the player's steps (pure: unit-tested). A statement's outcome and its
 * refusal join the statement; a statement held for approval runs later, so its outcome is a step of
 * its own after the approval; every other record is a step.
 */
import type { AuditRecord, StatementResultData } from '../../src/shared/audit.js';

export interface Step {
  record: AuditRecord;
  /** statement steps: their outcome and refusal, linked by statement_id. */
  result?: StatementResultData;
  blocked?: AuditRecord;
  /** The statement a step of its own is the outcome of (statements held for approval run later). */
  ranAfterApproval?: AuditRecord;
}

export const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Records → steps: a statement's result and refusal join the statement; everything else is its own step. */
export function stepsOf(records: AuditRecord[]): Step[] {
  const steps: Step[] = [];
  const byStatement = new Map<string, Step>();
  for (const record of records) {
    const statementId = str(record.data.statement_id);
    const owner = statementId ? byStatement.get(statementId) : undefined;
    if (record.type === 'statement.result' && owner) {
      // A held statement ran after its approval: its outcome is a step of its own, in time order.
      if (owner.record.data.decision === 'approve') {
        steps.push({
          record,
          result: record.data as unknown as StatementResultData,
          ranAfterApproval: owner.record,
        });
      } else owner.result = record.data as unknown as StatementResultData;
      continue;
    }
    if (record.type === 'policy.blocked' && owner) {
      owner.blocked = record;
      continue;
    }
    const step: Step = { record };
    if (record.type === 'statement' && statementId) byStatement.set(statementId, step);
    steps.push(step);
  }
  return steps;
}
