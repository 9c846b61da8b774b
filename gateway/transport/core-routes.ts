/** The API every client needs: discovery (public), who am I, and which connections I may reach. */
import { DISCOVERY_PATH, type GatewayDiscovery, type WhoAmI } from '../../src/shared/api.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { PolicyEngine } from '../policy/engine.js';
import { HttpError, type Route } from './router.js';

export interface CoreRouteDeps {
  config: GatewayConfig;
  engine: PolicyEngine;
  version: string;
  /** Time-boxed grants in force for a subject (policy names). */
  grants(issuer: string, subject: string): string[];
}

export function coreRoutes(deps: CoreRouteDeps): Route[] {
  const interactive = deps.config.identity.issuers.find((i) => i.kind === 'oidc' && i.cli_client_id);
  return [
    {
      method: 'GET',
      path: DISCOVERY_PATH,
      access: 'public',
      handler: async () => {
        if (!interactive) {
          throw new HttpError(
            404,
            'not_found',
            'this gateway has no interactive issuer (no identity.issuers[].cli_client_id)',
          );
        }
        const discovery: GatewayDiscovery = {
          issuer: interactive.issuer,
          client_id: interactive.cli_client_id!,
          audience: interactive.audience[0]!,
          scopes: interactive.scopes,
          version: deps.version,
        };
        return discovery;
      },
    },
    {
      method: 'GET',
      path: '/v1/whoami',
      access: 'identity',
      handler: async ({ identity }) => {
        const grants = deps.grants(identity.issuer, identity.subject);
        const policies = new Set<string>();
        for (const connection of deps.config.connections) {
          for (const p of deps.engine.policiesFor(identity, connection.name, grants)) policies.add(p.name);
        }
        const roles = deps.engine.roles(identity);
        const body: WhoAmI = { identity, policies: [...policies], ...roles };
        return body;
      },
    },
    {
      method: 'GET',
      path: '/v1/connections',
      access: 'identity',
      handler: async ({ identity }) =>
        deps.engine.connectionsView(identity, { grants: deps.grants(identity.issuer, identity.subject) }),
    },
  ];
}
