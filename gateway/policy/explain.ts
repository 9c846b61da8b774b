/** Explain a decision: what the gateway would decide for this SQL, under which rule, and why. Pure. */
import type { Identity } from '../../src/shared/identity.js';
import type { PolicyExplanation } from '../../src/shared/policy-explain.js';
import { type NameView, NO_NAMES } from '../contracts/names.js';
import { classify } from '../sql/classify.js';
import { resolveNames } from '../sql/session-sql.js';
import type { DecideOptions, PolicyEngine } from './engine.js';

export interface ExplainOptions extends DecideOptions {
  /** Resolve EXECUTE and FETCH against a session's names (default: only what the SQL itself prepares). */
  names?: NameView;
}

export function explain(
  engine: PolicyEngine,
  identity: Identity,
  connection: string,
  sql: string,
  opts: ExplainOptions = {},
): PolicyExplanation {
  const classified = classify(sql);
  const { classification } = resolveNames(classified, opts.names ?? NO_NAMES);
  const { decision, statements: decisions } = engine.decideAll(identity, connection, classification, opts);
  const explanation: PolicyExplanation = {
    identity: { issuer: identity.issuer, subject: identity.subject, groups: [...identity.groups] },
    connection,
    decision: decision.action,
    policy: decision.policy,
    rule: decision.rule,
    reason: decision.reason,
    ...(decision.approvers ? { approvers: decision.approvers } : {}),
    ...(decision.approvalsRequired !== undefined ? { approvalsRequired: decision.approvalsRequired } : {}),
    ...(decision.timeoutMs !== undefined ? { timeoutMs: decision.timeoutMs } : {}),
    policies: engine.policiesFor(identity, connection, opts.grants).map((p) => p.name),
    ...(classification.ok ? {} : { parseError: classification.error }),
    statements: [],
  };
  if (!classification.ok) return explanation;
  explanation.statements = classification.statements.map((stmt, i) => {
    const own = decisions[i]!;
    return {
      text: stmt.text,
      class: stmt.class,
      ...(stmt.alsoClasses?.length ? { alsoClasses: stmt.alsoClasses } : {}),
      kind: stmt.kind,
      relations: stmt.relations,
      functions: stmt.functions,
      flags: stmt.flags,
      sideChannels: stmt.sideChannels,
      fingerprint: stmt.fingerprint,
      ...(stmt.unplaceable ? { unplaceable: stmt.unplaceable } : {}),
      decision: own.action,
      policy: own.policy,
      rule: own.rule,
      reason: own.reason,
    };
  });
  return explanation;
}
