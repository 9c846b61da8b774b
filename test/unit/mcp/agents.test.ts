/** Agent guardrails (config agents[]) as the policy engine applies them: pure decisions. */
import { beforeAll, describe, expect, it } from 'vitest';
import { agentStartupParameters } from '../../../gateway/policy/agents.js';
import { createPolicyEngine } from '../../../gateway/policy/engine.js';
import { explain } from '../../../gateway/policy/explain.js';
import { classify } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { ConfigError, parseConfig } from '../../../src/shared/config/load.js';
import type { Identity, IdentityKind } from '../../../src/shared/identity.js';

beforeAll(async () => {
  await loadSqlParser();
});

const BASE = `
listen: { insecure_loopback: true }
identity: { issuers: [{ issuer: https://idp.example.com, audience: gw }] }
connections:
  - { name: prod-db, host: db, database: shop, user: hoop, password_env: P }
policies:
  - name: everyone
    groups: [engineering, ai-agents, bots]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: orders-writes, allow: [write], relations: [public.orders] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers] }
`;

const engine = createPolicyEngine(
  parseConfig(
    `${BASE}
agents:
  - { name: assistants, groups: [ai-agents], statement_timeout: 10s, max_rows: 50 }
  - { name: services, kinds: [service], read_only: false, statement_timeout: 0 }
`,
    'test.yaml',
  ),
);

const who = (subject: string, groups: string[], kind: IdentityKind = 'human'): Identity => ({
  issuer: 'https://idp.example.com',
  subject,
  groups,
  kind,
});
const alice = who('alice', ['engineering']);
const assistant = who('assistant', ['ai-agents'], 'service');
const bot = who('bot', ['bots'], 'service');

const decide = (identity: Identity, sql: string) =>
  engine.decideAll(identity, 'prod-db', classify(sql)).decision;

describe('agents[]', () => {
  it('matches the first entry by group, kind or subject', () => {
    expect(engine.agentFor(alice)).toBeUndefined();
    expect(engine.agentFor(assistant)).toMatchObject({ name: 'assistants', readOnly: true, maxRows: 50 });
    expect(engine.agentFor(bot)).toMatchObject({ name: 'services', readOnly: false, mcpOnly: true });
  });

  it('lets a read-only agent read, and change data only through approval', () => {
    expect(decide(assistant, 'select * from orders').action).toBe('allow');
    // The policy allows this write outright; for a read-only agent it is denied ...
    expect(decide(alice, 'update orders set total_cents = 1').action).toBe('allow');
    expect(decide(assistant, 'update orders set total_cents = 1')).toMatchObject({
      action: 'deny',
      rule: 'agent-read-only',
      policy: null,
    });
    // ... while what the policy sends for approval still goes for approval.
    expect(decide(assistant, "update customers set name = 'x'")).toMatchObject({
      action: 'approve',
      rule: 'changes-need-review',
    });
    expect(decide(assistant, 'begin').action).toBe('allow');
  });

  it('never lets an agent change session settings', () => {
    for (const sql of [
      'set statement_timeout = 0',
      'reset statement_timeout',
      "select set_config('statement_timeout', '0', false)",
    ]) {
      expect(decide(assistant, sql).rule, sql).toBe('agent-settings');
      expect(decide(bot, sql).rule, sql).toBe('agent-settings');
    }
    expect(decide(alice, 'set statement_timeout = 0').action).toBe('allow');
  });

  it('keeps a deny a deny, and explains the guardrail', () => {
    expect(decide(bot, 'update orders set total_cents = 1').action).toBe('allow');
    const x = explain(engine, assistant, 'prod-db', 'delete from orders');
    expect(x).toMatchObject({ decision: 'deny', rule: 'agent-read-only' });
    expect(x.reason).toMatch(/agent profile "assistants" is read-only/);
  });

  it('sets the statement timeout upstream for agents that have one', () => {
    expect(agentStartupParameters(engine.agentFor(assistant))).toEqual({ statement_timeout: '10000' });
    expect(agentStartupParameters(engine.agentFor(bot))).toEqual({});
    expect(agentStartupParameters(undefined)).toEqual({});
  });

  it('refuses an entry that matches nobody, naming the key', () => {
    expect(() => parseConfig(`${BASE}\nagents:\n  - { name: nobody }\n`, 'test.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(`${BASE}\nagents:\n  - { name: nobody }\n`, 'test.yaml')).toThrow(/agents\[0\]/);
  });
});
