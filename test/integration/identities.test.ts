/**
 * Identity lifecycle with real parts: `hoopctl identities` lists who used the gateway (people, service
 * accounts) and the policy subjects that never showed up or went idle; an admin's revocation ends open
 * sessions (psql through `hoopctl connect`, a running `hoopctl exec`), refuses the identity's valid
 * tokens until it is restored, and all of it is recorded. Also: two gateways sharing one store agree.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdentityService } from '../../gateway/identities/service.js';
import { openStore } from '../../gateway/store/index.js';
import type { AuditRecord, AuditRecordInput } from '../../src/shared/audit.js';
import { parseExport } from '../../src/shared/audit-export.js';
import type { IdentityListResponse } from '../../src/shared/identities-api.js';
import type { Identity } from '../../src/shared/identity.js';
import { HOOPCTL, type Stack, startStack } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: legacy-etl
    subjects: [legacy-etl-bot]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read] }
  - name: auditors
    groups: [audit]
    audit: true
  - name: identity-admins
    subjects: [rita@example.com]
    admin: true
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function psql(url: string, sql: string) {
  return spawnSync('psql', ['-X', '-At', url, '-c', sql], { encoding: 'utf8', timeout: 30_000 });
}

describe('hoopctl identities: listing, stale accounts, revocation', () => {
  let stack: Stack;
  let alice: string;
  let aubrey: string;
  let rita: string;
  let bot: string;

  const records = async (): Promise<AuditRecord[]> => {
    const result = await stack.cli(aubrey, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(result.code, result.stderr).toBe(0);
    return parseExport(result.stdout).records;
  };
  const list = async (args: string[] = []): Promise<IdentityListResponse> => {
    const result = await stack.cli(aubrey, ['identities', ...args, '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as IdentityListResponse;
  };

  beforeAll(async () => {
    stack = await startStack({ policies: POLICIES });
    alice = await stack.login('alice@example.com');
    aubrey = await stack.login('aubrey@example.com');
    rita = await stack.login('rita@example.com');
    bot = mkdtempSync(join(tmpdir(), 'hoop-bot-'));
    const run = await stack.cli(bot, ['exec', 'prod-db', '-c', 'select 1'], { env: stack.ciEnv() });
    expect(run.code, run.stderr).toBe(0);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lists the identities seen with kind and first/last seen, and policy subjects never seen', async () => {
    const answer = await list();
    const bySubject = new Map(answer.identities.map((i) => [i.subject, i]));
    expect(bySubject.get('alice@example.com')).toMatchObject({
      kind: 'human',
      groups: ['engineering'],
      revoked: false,
    });
    expect(bySubject.get('ci-bot')).toMatchObject({ kind: 'service', revoked: false });
    expect(bySubject.get('rita@example.com')).toMatchObject({ kind: 'human', policies: ['identity-admins'] });
    for (const identity of answer.identities) {
      expect(Date.parse(identity.first_seen)).toBeLessThanOrEqual(Date.parse(identity.last_seen));
      expect(identity.idle_days).toBe(0);
      expect(identity.stale).toBe(false);
    }
    // Named in a policy, never signed in: the lingering account to clean up.
    expect(answer.policy_subjects).toEqual([
      {
        subject: 'legacy-etl-bot',
        issuer: expect.any(String),
        policies: ['legacy-etl'],
        status: 'never_seen',
      },
    ]);

    const table = await stack.cli(aubrey, ['identities']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^SUBJECT +KIND +FIRST SEEN +LAST SEEN +IDLE +STATUS +ISSUER$/m);
    expect(table.stdout).toMatch(/^ci-bot +service .* active /m);
    expect(table.stdout).toMatch(
      /Policy subjects never seen:\nSUBJECT +STATUS +LAST SEEN +POLICIES\nlegacy-etl-bot +never seen +legacy-etl/,
    );
  });

  it('--stale lists identities idle for at least that long, and stale policy subjects', async () => {
    const before = await list();
    const ritaSeen = Date.parse(before.identities.find((i) => i.subject === 'rita@example.com')!.last_seen);
    // Let at least 2 s pass since rita was last seen (last_seen is refreshed at most once a minute).
    const wait = ritaSeen + 2100 - Date.now();
    if (wait > 0) await sleep(wait);
    const stale = await list(['--stale', '2s']);
    expect(stale.stale_days).toBeCloseTo(2 / 86_400);
    expect(stale.identities.map((i) => i.subject)).toContain('rita@example.com');
    expect(stale.identities.every((i) => i.stale)).toBe(true);
    expect(stale.policy_subjects).toEqual(
      expect.arrayContaining([
        {
          subject: 'legacy-etl-bot',
          issuer: expect.any(String),
          policies: ['legacy-etl'],
          status: 'never_seen',
        },
        expect.objectContaining({
          subject: 'rita@example.com',
          status: 'stale',
          policies: ['identity-admins'],
        }),
      ]),
    );
    expect((await list(['--stale', '30d'])).identities).toEqual([]);
    expect((await stack.cli(aubrey, ['identities', '--stale', 'soon'])).code).toBe(2);
  });

  it('needs the audit or admin role to list, and the admin role to revoke', async () => {
    const asAlice = await stack.cli(alice, ['identities']);
    expect(asAlice.code).toBe(4);
    expect(asAlice.stderr).toMatch(/audit or admin role/);
    expect((await stack.cli(rita, ['identities', '--json'])).code).toBe(0);
    const auditorRevokes = await stack.cli(aubrey, [
      'identities',
      'revoke',
      'alice@example.com',
      '--reason',
      'test',
    ]);
    expect(auditorRevokes.code).toBe(4);
    expect(auditorRevokes.stderr).toMatch(/admin role/);
    expect((await stack.cli(rita, ['identities', 'revoke', 'alice@example.com'])).code).toBe(2);
    const unknown = await stack.cli(rita, ['identities', 'revoke', 'nobody@example.com', '--reason', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no identity "nobody@example.com" has been seen/);
  });

  it('revocation ends an open psql session, refuses valid tokens until restored, and is recorded', async () => {
    const tunnel = await stack.connect(alice);
    const client = new pg.Client({ connectionString: tunnel.url });
    // The first error says why the session ended; pg reports the closed socket after it.
    const errors: Error[] = [];
    const ended = new Promise<Error>((resolve) =>
      client.on('error', (err) => {
        errors.push(err);
        resolve(errors[0]!);
      }),
    );
    try {
      await client.connect();
      expect((await client.query('select count(*)::int as n from customers')).rows).toEqual([{ n: 5 }]);

      const revoke = await stack.cli(rita, [
        'identities',
        'revoke',
        'alice@example.com',
        '--reason',
        'left the company',
      ]);
      expect(revoke.code, revoke.stderr).toBe(0);
      expect(revoke.stdout).toMatch(
        /revoked alice@example\.com \(human, .*\)\n1 open session ended on this gateway/,
      );
      const error = (await ended) as Error & { code?: string };
      expect(error.code).toBe('28000');
      expect(error.message).toMatch(/alice@example\.com has been revoked \(left the company\)/);

      // Her token is still valid, but the gateway refuses it: for the API, new tunnels and psql.
      const whoami = await stack.cli(alice, ['whoami']);
      expect(whoami.code).toBe(3);
      expect(whoami.stderr).toMatch(/revoked \(left the company\)/);
      const again = psql(tunnel.url, 'select 1');
      expect(again.status).not.toBe(0);
      const listed = (await list()).identities.find((i) => i.subject === 'alice@example.com');
      expect(listed).toMatchObject({ revoked: true, revoked_reason: 'left the company' });

      const restore = await stack.cli(rita, [
        'identities',
        'restore',
        'alice@example.com',
        '--reason',
        'rehired',
      ]);
      expect(restore.code, restore.stderr).toBe(0);
      expect((await stack.cli(alice, ['whoami'])).code).toBe(0);
      expect(psql(tunnel.url, 'select 7').stdout.trim()).toBe('7');
      expect((await stack.cli(rita, ['identities', 'restore', 'alice@example.com'])).code).toBe(1);
    } finally {
      await client.end().catch(() => {});
      tunnel.stop();
    }

    const all = await records();
    const revoked = all.find((r) => r.type === 'identity.revoked' && r.data.subject === 'alice@example.com');
    expect(revoked?.identity?.subject).toBe('rita@example.com');
    expect(revoked?.data).toMatchObject({
      kind: 'human',
      reason: 'left the company',
      terminated_sessions: 1,
    });
    const restored = all.find(
      (r) => r.type === 'identity.restored' && r.data.subject === 'alice@example.com',
    );
    expect(restored?.data).toMatchObject({ reason: 'rehired', revoked_reason: 'left the company' });
    const refused = all.filter((r) => r.type === 'auth.failed' && r.data.reason === 'revoked');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const r of refused)
      expect(r.identity).toMatchObject({ subject: 'alice@example.com', kind: 'human' });
    const sessionEnd = all.find(
      (r) =>
        r.type === 'session.ended' &&
        r.identity?.subject === 'alice@example.com' &&
        /revoked/.test(String(r.data.reason)),
    );
    expect(sessionEnd).toBeDefined();
  });

  it('revoking a service account ends its running exec (exit 3) and refuses the next one', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [HOOPCTL, 'exec', 'prod-db', '-c', 'select pg_sleep(120)'],
      {
        env: {
          ...(process.env as Record<string, string>),
          ...stack.ciEnv(),
          HOOPCTL_HOME: bot,
          HOOPCTL_GATEWAY: stack.gatewayUrl,
          HOOPCTL_CA_FILE: stack.certs!.caCert,
          NO_COLOR: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    const started = new Promise<void>((resolve) =>
      child.stderr!.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        if (/hoop session/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await started;
    const revoke = await stack.cli(rita, ['identities', 'revoke', 'ci-bot', '--reason', 'secret leaked']);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(await exited).toBe(3);
    expect(stderr).toMatch(/ci-bot has been revoked \(secret leaked\)/);
    const next = await stack.cli(bot, ['exec', 'prod-db', '-c', 'select 1'], { env: stack.ciEnv() });
    expect(next.code).toBe(3);
    expect((await stack.cli(rita, ['identities', 'restore', 'ci-bot'])).code).toBe(0);
    expect((await stack.cli(bot, ['exec', 'prod-db', '-c', 'select 1'], { env: stack.ciEnv() })).code).toBe(
      0,
    );
  });
});

describe('several gateways on one store agree on revocation', () => {
  it('a revocation made on one gateway reaches the other at its next refresh and ends its sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-replicas-'));
    // Two store connections to one database, as two gateway processes would have.
    const storeA = await openStore({ path: dir });
    const storeB = await openStore({ path: dir });
    const recordsA: AuditRecordInput[] = [];
    const terminatedB: string[] = [];
    const policies = [{ name: 'p', subjects: ['deployer'] }];
    const a = createIdentityService({
      store: storeA,
      policies,
      record: async (input) => recordsA.push(input),
      terminate: () => 0,
    });
    const b = createIdentityService({
      store: storeB,
      policies,
      record: async () => {},
      terminate: (_issuer, subject) => {
        terminatedB.push(subject);
        return 1;
      },
    });
    try {
      await a.refresh();
      await b.refresh();
      const deployer: Identity = {
        issuer: 'https://ci.example.com',
        subject: 'deployer',
        groups: [],
        kind: 'workload',
      };
      const admin: Identity = {
        issuer: 'https://idp.example.com',
        subject: 'root',
        groups: [],
        kind: 'human',
      };
      await b.seen(deployer);
      expect((await a.list()).identities.map((i) => i.subject)).toEqual(['deployer']);

      const result = await a.revoke({ subject: 'deployer', reason: 'decommissioned' }, admin, '127.0.0.1:1');
      expect(result.identities).toHaveLength(1);
      expect(a.isRevoked(deployer)).toBe(true);
      expect(() => a.admit(deployer)).toThrow(/revoked \(decommissioned\)/);
      // B has not refreshed yet: it still admits; its next refresh (every 2 s when started) catches up.
      expect(b.isRevoked(deployer)).toBe(false);
      await b.refresh();
      expect(b.isRevoked(deployer)).toBe(true);
      expect(() => b.admit(deployer)).toThrow(/revoked/);
      expect(terminatedB).toEqual(['deployer']);
      await b.refresh();
      expect(terminatedB).toEqual(['deployer']); // once, not at every refresh

      await b.restore({ subject: 'deployer' }, admin, '127.0.0.1:2');
      expect(b.isRevoked(deployer)).toBe(false);
      await a.refresh();
      expect(a.isRevoked(deployer)).toBe(false);
      expect(recordsA.map((r) => r.type)).toEqual(['identity.revoked']);
    } finally {
      a.stop();
      b.stop();
      await storeA.close();
      await storeB.close();
    }
  });
});
