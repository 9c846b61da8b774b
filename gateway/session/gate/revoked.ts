/** Check: a revoked identity runs nothing, even in a session opened before the revocation. */

import type { Decision } from '../../../src/shared/statement.js';
import type { SessionInfo } from '../../contracts/session.js';

/** The decision a revoked identity's statements get (recorded like any other refusal). */
export const REVOKED_DECISION: Decision = {
  action: 'deny',
  policy: null,
  rule: 'identity-revoked',
  reason: 'this identity has been revoked (hoopctl identities restore undoes it)',
};

export function checkRevoked(
  info: SessionInfo,
  revoked: (info: SessionInfo) => boolean,
): Decision | undefined {
  return revoked(info) ? REVOKED_DECISION : undefined;
}
