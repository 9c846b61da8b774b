/**
 * What `hoopctl policy test` and POST /v1/policy/test answer: the decision for a piece of SQL and how
 * each statement was classified. Also the `--json` shape of `hoopctl policy test` (docs/policy.md).
 */
import type { ClassifiedStatement, DecisionAction } from './statement.js';

/** A classified statement and its own decision. */
export interface StatementExplanation extends ClassifiedStatement {
  decision: DecisionAction;
  policy: string | null;
  rule: string;
  reason: string;
}

export interface PolicyExplanation {
  identity: { issuer?: string; subject: string; groups: string[] };
  connection: string;
  /** The decision for the whole text: any statement denied denies it. */
  decision: DecisionAction;
  policy: string | null;
  rule: string;
  reason: string;
  approvers?: string[];
  approvalsRequired?: number;
  timeoutMs?: number;
  /** Policies that apply to this identity on this connection, in config order. */
  policies: string[];
  /** The parser's error when the text did not parse (then `statements` is empty). */
  parseError?: string;
  statements: StatementExplanation[];
}
