/**
 * Machines first, end to end with real parts: a CI job holding only a workload ID token (a second,
 * GitHub-Actions-shaped issuer with its own JWKS server) runs a migration through `hoopctl exec -f`;
 * a service account logs in with client credentials; tokens with the wrong bound claims, audience or
 * issuer, or expired, are refused and recorded; records tell machines from people.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/shared/audit.js';
import { parseExport } from '../../src/shared/audit-export.js';
import { mintWorkloadToken, startWorkloadIssuer, type WorkloadIssuer } from '../harness/idp.js';
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
      - { name: no-grants, deny: [dcl, admin] }
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: auditors
    groups: [audit]
    audit: true
  - name: identity-admins
    groups: [db-reviewers]
    admin: true
`;

const workloadIssuerYaml = (issuer: string) => (audience: string) =>
  `    - issuer: ${issuer}
      audience: ${audience}
      kind: workload
      claims: { subject: repository }
      bound_claims: { repository: acme/app, ref: refs/heads/main }
      groups: [ci-deploy]`;

/** Every record of the last hour, read the way an auditor does: `hoopctl sessions export`. */
async function auditRecords(stack: Stack, auditorHome: string): Promise<AuditRecord[]> {
  const result = await stack.cli(auditorHome, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
  expect(result.code, result.stderr).toBe(0);
  return parseExport(result.stdout).records;
}

/**
 * The reasons of the recorded failed authentications without an identity: the first of a source's window
 * is recorded at once, the rest counted into one record at the window's end. Waits for `expected`.
 */
async function failureReasons(stack: Stack, auditorHome: string, expected: string[]): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const reasons = new Set<string>();
    for (const r of await auditRecords(stack, auditorHome)) {
      if (r.type !== 'auth.failed') continue;
      reasons.add(String(r.data.reason));
      for (const reason of Object.keys((r.data.reasons as Record<string, number>) ?? {})) reasons.add(reason);
    }
    if (expected.every((e) => reasons.has(e)) || attempt === 20) return [...reasons];
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** GET a gateway API path with a raw bearer token (for tokens the CLI would refuse to send). */
function gatewayGet(stack: Stack, path: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, stack.gatewayUrl),
      { headers: { authorization: `Bearer ${token}` }, ca: readFileSync(stack.certs!.caCert) },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('non-human identities: workload tokens and client credentials', () => {
  let stack: Stack;
  let ci: WorkloadIssuer;
  let stranger: WorkloadIssuer;
  let auditor: string;
  let dir: string;

  beforeAll(async () => {
    ci = await startWorkloadIssuer();
    stranger = await startWorkloadIssuer();
    stack = await startStack({
      policies: POLICIES,
      extraIssuers: workloadIssuerYaml(ci.issuer),
      // Failures without an identity are counted per source and window (docs/audit.md): a short window
      // so the counted ones are recorded while the test waits.
      extraConfig: 'audit:\n  auth_failures: { window: 1s, max_sources: 100 }',
    });
    auditor = await stack.login('aubrey@example.com');
    dir = mkdtempSync(join(tmpdir(), 'hoop-ci-job-'));
  });
  afterAll(async () => {
    await stack?.stop();
    await ci?.stop();
    await stranger?.stop();
  });

  /**
   * The CI job as a shell script, as in docs/machine-identities.md: nothing but the ID token file and the
   * gateway address; the script's own exit code is hoopctl's.
   */
  async function ciJob(migration: string, claims: Record<string, string> = {}) {
    const home = mkdtempSync(join(tmpdir(), 'hoop-ci-home-'));
    const tokenFile = join(dir, `id-token-${Math.random().toString(36).slice(2)}`);
    writeFileSync(tokenFile, await mintWorkloadToken(ci, stack.gatewayUrl, claims));
    const sqlFile = join(dir, 'migrate.sql');
    writeFileSync(sqlFile, migration);
    const script = `set -u
node "$HOOPCTL_BIN" exec prod-db --id-token-file "$ID_TOKEN_FILE" -f "$MIGRATION"
status=$?
echo "hoopctl exited $status" >&2
exit $status`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      HOOPCTL_HOME: home,
      HOOPCTL_GATEWAY: stack.gatewayUrl,
      HOOPCTL_CA_FILE: stack.certs!.caCert,
      HOOPCTL_BIN: HOOPCTL,
      ID_TOKEN_FILE: tokenFile,
      MIGRATION: sqlFile,
      NO_COLOR: '1',
    };
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
    // CI mode writes nothing: no token file, no settings.
    expect(readdirSync(home)).toEqual([]);
    return { code, stdout, stderr };
  }

  const tableExists = async (name: string) => {
    const result = await stack.cli(
      auditor,
      ['exec', 'prod-db', '--format', 'csv', '-c', `select to_regclass('${name}') is not null as present`],
      {
        env: stack.ciEnv(),
      },
    );
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim().split('\r\n')[1] === 't';
  };

  it('a CI job with only a workload token runs a migration: exit 0', async () => {
    const result = await ciJob(`
      begin;
      create table deploy_log (id serial primary key, version text not null, at timestamptz default now());
      insert into deploy_log (version) values ('v1');
      commit;
      select version from deploy_log;
    `);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/hoop session [0-9a-f-]{36} on prod-db/);
    expect(result.stdout).toContain('v1');
    expect(await tableExists('deploy_log')).toBe(true);
  });

  it('the same job gets exit 4 when policy denies a statement, and the transaction is not applied', async () => {
    const result = await ciJob(`
      begin;
      create table half_done (id int);
      grant select on customers to public;
      commit;
    `);
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/denied by rule "no-grants" of policy "ci-deploy".*SQLSTATE 42501/);
    expect(await tableExists('half_done')).toBe(false);
  });

  it('the same job gets exit 6 on a database error, and stops there', async () => {
    const result = await ciJob(`
      alter table no_such_table add column x int;
      create table after_the_error (id int);
    `);
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/relation "no_such_table" does not exist \(SQLSTATE 42P01\)/);
    expect(await tableExists('after_the_error')).toBe(false);
  });

  it('accepts workload tokens only when the bound claims match (exit 3 otherwise)', async () => {
    const feature = await ciJob('select 1', { ref: 'refs/heads/feature-x' });
    expect(feature.code).toBe(3);
    expect(feature.stderr).toMatch(
      /"ref" is "refs\/heads\/feature-x", but this issuer only accepts refs\/heads\/main/,
    );
    const fork = await ciJob('select 1', { repository: 'mallory/app' });
    expect(fork.code).toBe(3);
    expect(fork.stderr).toMatch(/"repository" is "mallory\/app"/);
    // Recorded by reason only: the claims' values are the caller's to choose, so none is kept.
    const records = await auditRecords(stack, auditor);
    const failed = records.filter((r) => r.type === 'auth.failed' && r.data.reason === 'bound_claims');
    expect(failed.length).toBeGreaterThan(0);
    expect(JSON.stringify(failed)).not.toMatch(/feature-x|mallory/);
  });

  it('refuses and records expired, wrong-audience and unknown-issuer tokens', async () => {
    const home = mkdtempSync(join(tmpdir(), 'hoop-ci-home-'));
    const wrongAudience = await mintWorkloadToken(ci, 'https://some-other-gateway.example.com');
    const foreign = await mintWorkloadToken(stranger, stack.gatewayUrl);
    for (const token of [wrongAudience, foreign]) {
      const result = await stack.cli(home, ['exec', 'prod-db', '-c', 'select 1'], {
        env: { HOOPCTL_ID_TOKEN: token },
      });
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
    }
    // The CLI does not even send an expired token...
    const expired = await mintWorkloadToken(ci, stack.gatewayUrl, {}, { expiresIn: -120 });
    const cli = await stack.cli(home, ['exec', 'prod-db', '-c', 'select 1'], {
      env: { HOOPCTL_ID_TOKEN: expired },
    });
    expect(cli.code).toBe(3);
    expect(cli.stderr).toMatch(/expired/);
    // ...but a client that does is refused by the gateway too.
    expect(await gatewayGet(stack, '/v1/whoami', expired)).toBe(401);

    const reasons = await failureReasons(stack, auditor, ['expired', 'wrong_audience', 'unknown_issuer']);
    expect(reasons).toEqual(expect.arrayContaining(['expired', 'wrong_audience', 'unknown_issuer']));
  });

  it('client credentials end to end: login checks and stores nothing, exec runs as the service account', async () => {
    const home = mkdtempSync(join(tmpdir(), 'hoop-svc-home-'));
    const login = await stack.cli(home, ['login', '--client-credentials'], { env: stack.ciEnv() });
    expect(login.code, login.stderr).toBe(0);
    const who = await stack.cli(home, ['whoami', '--json'], { env: stack.ciEnv() });
    expect(JSON.parse(who.stdout).identity).toMatchObject({
      subject: 'ci-bot',
      kind: 'service',
      clientId: 'ci-bot',
    });
    const result = await stack.cli(
      home,
      ['exec', 'prod-db', '--format', 'json', '-c', 'select count(*) as n from customers'],
      {
        env: stack.ciEnv(),
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ n: 5 });
    expect(readdirSync(home)).toEqual([]);
    const wrong = await stack.cli(home, ['exec', 'prod-db', '-c', 'select 1'], {
      env: { HOOPCTL_CLIENT_ID: 'ci-bot', HOOPCTL_CLIENT_SECRET: 'not-the-secret' },
    });
    expect(wrong.code).toBe(3);
  });

  it('records tell machines from people: kind, client id and the CI claims on every record of a session', async () => {
    const job = await ciJob('select 1 as one');
    expect(job.code, job.stderr).toBe(0);
    const session = /hoop session ([0-9a-f-]{36})/.exec(job.stderr)![1]!;
    const alice = await stack.login('alice@example.com');
    const human = await stack.cli(alice, ['exec', 'prod-db', '-c', 'select 2 as two']);
    expect(human.code, human.stderr).toBe(0);
    const humanSession = /hoop session ([0-9a-f-]{36})/.exec(human.stderr)![1]!;

    const records = await auditRecords(stack, auditor);
    const ofJob = records.filter((r) => r.session === session);
    expect(ofJob.map((r) => r.type)).toEqual(
      expect.arrayContaining([
        'auth.succeeded',
        'session.started',
        'statement',
        'statement.result',
        'session.ended',
      ]),
    );
    for (const record of ofJob) {
      expect(record.identity, record.type).toMatchObject({
        subject: 'acme/app',
        kind: 'workload',
        groups: ['ci-deploy'],
        claims: {
          repository: 'acme/app',
          ref: 'refs/heads/main',
          sha: 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3',
          workflow: 'deploy',
          job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main',
          run_id: '4242',
          actor: 'octocat',
        },
      });
    }
    expect(ofJob.find((r) => r.type === 'auth.succeeded')?.data).toMatchObject({ client: 'exec' });

    const ofHuman = records.filter((r) => r.session === humanSession);
    expect(ofHuman.length).toBeGreaterThan(3);
    for (const record of ofHuman) {
      expect(record.identity).toMatchObject({
        subject: 'alice@example.com',
        kind: 'human',
        clientId: 'hoopctl',
      });
      expect(record.identity?.claims).toBeUndefined();
    }
    const service = records.filter((r) => r.type === 'session.started' && r.identity?.subject === 'ci-bot');
    expect(service.length).toBeGreaterThan(0);
    for (const record of service)
      expect(record.identity).toMatchObject({ kind: 'service', clientId: 'ci-bot' });
  });

  it('a revoked workload stays revoked whatever the token’s spelling of its issuer (a trailing slash)', async () => {
    const rita = await stack.login('rita@example.com');
    const plain = await mintWorkloadToken(ci, stack.gatewayUrl);
    const slashed = await mintWorkloadToken(ci, stack.gatewayUrl, { iss: `${ci.issuer}/` });
    const doubled = await mintWorkloadToken(ci, stack.gatewayUrl, { iss: `${ci.issuer}//` });
    // The same issuer, the same identity: all three are accepted before the revocation.
    for (const token of [plain, slashed, doubled])
      expect(await gatewayGet(stack, '/v1/whoami', token)).toBe(200);
    const revoke = await stack.cli(rita, ['identities', 'revoke', 'acme/app', '--reason', 'repo archived']);
    expect(revoke.code, revoke.stderr).toBe(0);
    try {
      for (const token of [plain, slashed, doubled])
        expect(await gatewayGet(stack, '/v1/whoami', token)).toBe(401);
    } finally {
      const restore = await stack.cli(rita, ['identities', 'restore', 'acme/app']);
      expect(restore.code, restore.stderr).toBe(0);
    }
    // One identity listed for the issuer as configured, not one per spelling.
    const listed = await stack.cli(rita, ['identities', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const issuers = (
      JSON.parse(listed.stdout) as { identities: { subject: string; issuer: string }[] }
    ).identities
      .filter((i) => i.subject === 'acme/app')
      .map((i) => i.issuer);
    expect(issuers).toEqual([ci.issuer]);
  });
});
