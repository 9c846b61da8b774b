/** Check: a revoked identity runs nothing, even in a session opened before the revocation. */

import type { Refusal } from '../../contracts/refusal.js';
import type { SessionInfo } from '../../contracts/session.js';
import { REVOKED } from './refusals.js';

export function checkRevoked(
  info: SessionInfo,
  revoked: (info: SessionInfo) => boolean,
): Refusal | undefined {
  return revoked(info) ? REVOKED : undefined;
}
