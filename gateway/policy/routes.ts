/** The policy API: POST /v1/policy/test explains a decision for the caller's own identity. */
import { z } from 'zod';
import type { Identity } from '../../src/shared/identity.js';
import { HttpError, type Route } from '../transport/router.js';
import type { PolicyEngine } from './engine.js';
import { explain } from './explain.js';

export interface PolicyRouteDeps {
  engine: PolicyEngine;
  /** Time-boxed grants in force for the caller (default: none). */
  grants?: (identity: Identity) => string[];
}

const testBody = z.strictObject({
  connection: z.string().min(1, 'must name a connection'),
  sql: z.string().max(1024 * 1024, 'must be at most 1 MiB'),
  /** Explain for someone else (`hoopctl policy test --identity --groups`): admins and auditors only. */
  as: z
    .strictObject({
      subject: z.string().min(1),
      /** The subject's issuer (policy subjects name one); default: the caller's. */
      issuer: z.string().min(1).optional(),
      groups: z.array(z.string()).default([]),
    })
    .optional(),
});

export function policyRoutes(deps: PolicyRouteDeps): Route[] {
  return [
    {
      method: 'POST',
      path: '/v1/policy/test',
      access: 'identity',
      handler: async ({ identity, body }) => {
        const parsed = testBody.safeParse(body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new HttpError(
            400,
            'bad_request',
            `body.${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'}`,
          );
        }
        const { connection, sql, as } = parsed.data;
        if (as) {
          const roles = deps.engine.roles(identity);
          if (!roles.admin && !roles.audit) {
            throw new HttpError(
              403,
              'forbidden',
              'explaining a decision for another identity needs the admin or audit role; without --identity you get your own',
            );
          }
          if (!deps.engine.connection(connection)) {
            throw new HttpError(404, 'not_found', `no connection named "${connection}"`);
          }
          // A hypothetical identity (of the caller's issuer unless named): no grants, no claims.
          const other: Identity = {
            issuer: as.issuer ?? identity.issuer,
            subject: as.subject,
            groups: as.groups,
            kind: 'human',
          };
          return explain(deps.engine, other, connection, sql, { grants: [] });
        }
        const grants = deps.grants?.(identity) ?? [];
        // Only a connection this identity may know of (`hoopctl connections`): the same answer whether it
        // does not exist or is not yours, as the tunnel, the native listener and MCP give — names are not
        // disclosed.
        if (!deps.engine.connectionsView(identity, { grants }).some((v) => v.name === connection)) {
          throw new HttpError(
            404,
            'not_found',
            `no connection "${connection}" for ${identity.subject} (see: hoopctl connections)`,
          );
        }
        return explain(deps.engine, identity, connection, sql, { grants });
      },
    },
  ];
}
