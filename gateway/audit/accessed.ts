/**
 * `audit.accessed`: every read of the audit log (sessions list / show / replay / export, verify, the
 * compliance report) is itself recorded — who, from where, what they asked for — before the answer
 * leaves the gateway. If that record cannot be written, the read is refused (fail closed).
 */
import type { RouteContext } from '../transport/router.js';
import { HttpError } from '../transport/router.js';
import type { AuditLog } from './log.js';

export type AuditAccessAction =
  | 'sessions.list'
  | 'sessions.show'
  | 'sessions.replay'
  | 'sessions.export'
  | 'audit.verify'
  | 'report';

export async function recordAuditAccess(
  log: Pick<AuditLog, 'append'>,
  ctx: Pick<RouteContext, 'identity' | 'source'>,
  action: AuditAccessAction,
  what: Record<string, unknown>,
): Promise<void> {
  try {
    await log.append({
      type: 'audit.accessed',
      identity: ctx.identity,
      source: ctx.source,
      data: { action, ...what },
    });
  } catch {
    throw new HttpError(
      503,
      'unavailable',
      'the audit log cannot be written, so reading it is refused (every access to it is recorded)',
    );
  }
}
