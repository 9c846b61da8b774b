/** The web console (/console): its pages and sign-in; its session cookie stands in for a bearer token. */
import { createConsole } from '../console/routes.js';
import type { AuditParts } from './audit.js';
import type { GatewayContext } from './context.js';
import type { IdentityParts } from './identity.js';

export function buildConsole(ctx: GatewayContext, deps: { audit: AuditParts; identity: IdentityParts }) {
  if (!ctx.config.console.enabled) return undefined;
  return createConsole({
    config: ctx.config,
    authenticate: deps.identity.authenticate,
    record: (input) => deps.audit.log.append(input),
  });
}
