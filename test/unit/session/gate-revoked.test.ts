/**
 * The gate's revocation check: a revoked identity's statement in an already open session (another
 * replica's, say) is refused with 28000 and leaves the same evidence as any refusal — the statement
 * as denied and a policy.blocked record naming the rule — so an auditor sees what was attempted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { NO_NAMES } from '../../../gateway/contracts/names.js';
import type { SessionInfo } from '../../../gateway/contracts/session.js';
import { createPolicyEngine } from '../../../gateway/policy/engine.js';
import { createStatementGate } from '../../../gateway/session/gate/index.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import type { AuditRecordInput } from '../../../src/shared/audit.js';
import { parseConfig } from '../../../src/shared/config/load.js';

beforeAll(async () => {
  await loadSqlParser();
});

const config = parseConfig(
  `
listen: { insecure_loopback: true }
identity: { issuers: [{ issuer: https://idp.example.com, audience: gw }] }
connections:
  - { name: prod-db, host: db, database: shop, user: hoop, password_env: P }
policies:
  - { name: engineers, groups: [engineering], connections: [prod-db], rules: [{ name: reads, allow: [read] }] }
`,
  'test.yaml',
);

describe('the revocation check', () => {
  it('refuses a revoked identity’s statement and records it as blocked by identity-revoked', async () => {
    const written: AuditRecordInput[] = [];
    let revoked = false;
    const info: SessionInfo = {
      id: 'a1b2c3d4-0000-0000-0000-000000000000',
      identity: {
        issuer: 'https://idp.example.com',
        subject: 'alice',
        groups: ['engineering'],
        kind: 'human',
      },
      connection: config.connections[0]!,
      source: '127.0.0.1',
      client: 'connect',
      startedAt: Date.now(),
    } as SessionInfo;
    const gate = createStatementGate(info, {
      engine: createPolicyEngine(config),
      log: {
        append: async (input) => {
          written.push(input);
          return {};
        },
      },
      failOpen: false,
      recordRows: 0,
      recordBytes: 0,
      grants: () => [],
      revoked: () => revoked,
      onLogError: (err) => {
        throw err;
      },
    });
    const request = (sql: string) => ({
      phase: 'query' as const,
      sql,
      transactionStatus: 'I' as const,
      names: NO_NAMES,
      signal: new AbortController().signal,
      notify: () => {},
    });

    expect((await gate.check(request('select 1'))).action).toBe('forward');
    revoked = true;
    const verdict = await gate.check(request('select 2'));
    expect(verdict.action).toBe('refuse');
    expect(verdict.action === 'refuse' && verdict.refusal.sqlstate).toBe('28000');
    await new Promise((resolve) => setImmediate(resolve));
    const blocked = written.find((r) => r.type === 'policy.blocked');
    expect(blocked?.data).toMatchObject({ text: 'select 2', rule: 'identity-revoked', policy: null });
    const statement = written.filter((r) => r.type === 'statement').at(-1);
    expect(statement?.data).toMatchObject({ decision: 'deny', rule: 'identity-revoked' });
  });
});
