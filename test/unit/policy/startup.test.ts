/** Startup parameters are judged like SET; options are split as the server splits them. */
import { beforeAll, describe, expect, it } from 'vitest';
import { createPolicyEngine } from '../../../gateway/policy/engine.js';
import { equivalentSet, judgeStartup } from '../../../gateway/policy/startup.js';
import { startupSettings } from '../../../gateway/session/startup.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { configSchema } from '../../../src/shared/config/schema.js';
import type { Identity } from '../../../src/shared/identity.js';

beforeAll(async () => {
  await loadSqlParser();
});

const config = configSchema.parse({
  listen: { insecure_loopback: true },
  identity: { issuers: [{ issuer: 'https://idp.example.com', audience: 'gw' }] },
  connections: [{ name: 'db', host: 'h', database: 'd', user: 'u' }],
  policies: [
    {
      name: 'readers',
      groups: ['readers'],
      connections: ['db'],
      rules: [{ name: 'reads', allow: ['read', 'transaction', 'session'] }],
    },
    {
      name: 'writers',
      groups: ['writers'],
      connections: ['db'],
      rules: [
        { name: 'reads', allow: ['read', 'transaction', 'session'] },
        { name: 'changes', approve: ['write'], approvers: ['reviewers'] },
      ],
    },
    { name: 'bare', groups: ['bare'], connections: ['db'], rules: [{ name: 'only-reads', allow: ['read'] }] },
  ],
});
const engine = createPolicyEngine(config);
const who = (group: string): Identity => ({
  issuer: 'https://idp.example.com',
  subject: group,
  groups: [group],
  kind: 'human',
});

describe('startup options', () => {
  it('-c name=value, -cname=value, --name=value, backslash escapes; dashes become underscores', () => {
    expect(
      startupSettings({
        user: 'u',
        database: 'd',
        options: '-c statement_timeout=50 -csearch_path=a,b --lock-timeout=1s -c application_name=my\\ app',
        DateStyle: 'ISO',
      }),
    ).toEqual([
      { name: 'statement_timeout', value: '50' },
      { name: 'search_path', value: 'a,b' },
      { name: 'lock_timeout', value: '1s' },
      { name: 'application_name', value: 'my app' },
      { name: 'DateStyle', value: 'ISO' },
    ]);
  });

  it('refuses switches it does not pass on, rather than dropping them', () => {
    expect(() => startupSettings({ options: '-e' })).toThrow(/startup option "-e" is not supported/);
    expect(() => startupSettings({ options: '-c' })).toThrow(/needs name=value/);
    expect(() => startupSettings({ options: '-c foo' })).toThrow(/needs name=value/);
  });
});

describe('judging startup parameters', () => {
  it('a parameter is judged as the equivalent SET: allowed ones go upstream', () => {
    const judged = judgeStartup(engine, who('writers'), 'db', [
      { name: 'statement_timeout', value: '50' },
      { name: 'search_path', value: 'app' },
    ]);
    expect(judged.refused).toBeUndefined();
    expect(judged.upstream).toEqual({ statement_timeout: '50', search_path: 'app', client_encoding: 'UTF8' });
    expect(judged.held.size).toBe(0);
  });

  it('side channels and classes the policy does not allow are refused, naming the parameter and rule', () => {
    const role = judgeStartup(engine, who('writers'), 'db', [{ name: 'role', value: 'postgres' }]);
    expect(role.refused).toMatchObject({
      setting: { name: 'role' },
      decision: { rule: 'builtin-deny-list' },
    });
    const bare = judgeStartup(engine, who('bare'), 'db', [{ name: 'statement_timeout', value: '0' }]);
    expect(bare.refused).toMatchObject({ decision: { rule: 'default-deny' } });
  });

  it("what every driver sends by itself passes a policy without a session rule (not an explicit deny, nor an agent's)", () => {
    const sent = [
      { name: 'application_name', value: 'psql' },
      { name: 'DateStyle', value: 'ISO, DMY' },
      { name: 'extra_float_digits', value: '3' },
    ];
    const bare = judgeStartup(engine, who('bare'), 'db', sent);
    expect(bare.refused).toBeUndefined();
    expect(bare.upstream).toMatchObject({ application_name: 'psql', datestyle: 'ISO, DMY' });
    const denying = createPolicyEngine(
      configSchema.parse({
        ...config,
        policies: [
          {
            name: 'strict',
            groups: ['bare'],
            connections: ['db'],
            rules: [
              { name: 'no-settings', deny: ['session'] },
              { name: 'reads', allow: ['read'] },
            ],
          },
        ],
      }),
    );
    expect(judgeStartup(denying, who('bare'), 'db', sent).refused).toMatchObject({
      setting: { name: 'application_name' },
      decision: { rule: 'no-settings' },
    });
  });

  it('an identity that may not write gets a read-only session it cannot undo at startup', () => {
    const judged = judgeStartup(engine, who('readers'), 'db', [{ name: 'application_name', value: 'psql' }]);
    expect(judged.upstream.default_transaction_read_only).toBe('on');
    expect([...judged.held]).toEqual([['default_transaction_read_only', 'on']]);
    for (const name of ['default_transaction_read_only', 'transaction_read_only']) {
      const off = judgeStartup(engine, who('readers'), 'db', [{ name, value: 'off' }]);
      expect(off.refused?.decision.rule, name).toBe('read-only-session');
    }
    const on = judgeStartup(engine, who('readers'), 'db', [
      { name: 'default_transaction_read_only', value: 'true' },
    ]);
    expect(on.refused).toBeUndefined();
  });

  it('the equivalent SET quotes whatever the client sent', () => {
    expect(equivalentSet({ name: 'Application_Name', value: "x'; drop table t; --" })).toBe(
      `SET "application_name" TO 'x''; drop table t; --'`,
    );
  });
});
