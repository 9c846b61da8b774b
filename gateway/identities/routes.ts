/**
 * /v1/identities: list the identities seen and the policy subjects that need a look (auditors and
 * admins), revoke and restore (admins only: auditors observe, they do not change who has access).
 */
import { parseDuration } from '../../src/shared/duration.js';
import type { IdentityChangeRequest } from '../../src/shared/identities-api.js';
import type { Identity } from '../../src/shared/identity.js';
import type { Roles } from '../policy/engine.js';
import { HttpError, type Route } from '../transport/router.js';
import type { IdentityService } from './service.js';

export function identityRoutes(deps: {
  identities: IdentityService;
  roles(identity: Identity): Roles;
}): Route[] {
  const { identities } = deps;
  return [
    {
      method: 'GET',
      path: '/v1/identities',
      // audit OR admin: the router checks one role, so this route checks both itself.
      access: 'identity',
      handler: async ({ identity, query }) => {
        const roles = deps.roles(identity);
        if (!roles.audit && !roles.admin) {
          throw new HttpError(
            403,
            'forbidden',
            `this needs the audit or admin role, which ${identity.subject} does not have`,
          );
        }
        const stale = query.get('stale');
        let staleMs: number | undefined;
        if (stale) {
          try {
            staleMs = parseDuration(stale);
          } catch (err) {
            throw new HttpError(400, 'bad_request', `stale: ${(err as Error).message}`);
          }
          if (staleMs <= 0) throw new HttpError(400, 'bad_request', 'stale: must be longer than 0');
        }
        return identities.list(staleMs);
      },
    },
    {
      method: 'POST',
      path: '/v1/identities/revoke',
      access: 'admin',
      handler: async ({ identity, body, source }) =>
        identities.revoke((body ?? {}) as IdentityChangeRequest, identity, source),
    },
    {
      method: 'POST',
      path: '/v1/identities/restore',
      access: 'admin',
      handler: async ({ identity, body, source }) =>
        identities.restore((body ?? {}) as IdentityChangeRequest, identity, source),
    },
  ];
}
