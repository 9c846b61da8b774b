/** The gate's typed refusals: each with its SQLSTATE and stable routine code. Only the relay's edge encodes them. */
import type { Decision } from '../../../src/shared/statement.js';
import type { Refusal } from '../../contracts/refusal.js';

export { AUDIT_UNAVAILABLE } from '../../contracts/refusal.js';

export const REVOKED: Refusal = {
  sqlstate: '28000',
  routine: 'hoop_revoked',
  message: 'hoop: this identity has been revoked',
};

export const MASKING_UNAVAILABLE: Refusal = {
  sqlstate: '58000',
  routine: 'hoop_masking_unavailable',
  message: 'hoop: masked columns cannot be checked right now (the gateway cannot read the database catalog)',
  hint: 'This gateway fails closed for identities with masking rules. Ask the operator to check the connection.',
};

export const CATALOG_UNAVAILABLE: Refusal = {
  sqlstate: '58000',
  routine: 'hoop_catalog_unavailable',
  message:
    'hoop: the names in this statement cannot be resolved right now (the gateway cannot read the database catalog)',
  hint: 'This gateway fails closed when a decision depends on what names mean. Ask the operator to check the connection.',
};

/** A policy (or masking) decision that refuses: denied, or needing an approval this gateway cannot take. */
export function policyRefusal(decision: Decision, detail: string): Refusal {
  const approval = decision.action === 'approve';
  const of = decision.policy ? ` of policy "${decision.policy}"` : '';
  return {
    sqlstate: '42501',
    routine: approval ? 'hoop_approval_required' : 'hoop_policy_denied',
    message: approval
      ? `hoop: approval required by rule "${decision.rule}"${of}`
      : `hoop: statement denied by rule "${decision.rule}"${of}`,
    detail,
    hint: approval
      ? 'Approval requests are not enabled on this gateway yet.'
      : 'See what you may run: hoopctl connections; explain a decision: hoopctl policy test --sql "..."',
  };
}
