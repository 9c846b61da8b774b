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
        const { connection, sql } = parsed.data;
        if (!deps.engine.connection(connection)) {
          throw new HttpError(404, 'not_found', `no connection named "${connection}"`);
        }
        return explain(deps.engine, identity, connection, sql, { grants: deps.grants?.(identity) ?? [] });
      },
    },
  ];
}
