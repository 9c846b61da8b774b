/**
 * The compliance report from a demo period of real traffic: psql through `hoopctl connect` (allowed,
 * masked, refused), a held change approved with `hoopctl approve`, ci-bot by `hoopctl exec` and by an
 * interactive tunnel, a failed login, a revocation and a restore, a key rotation and a configuration
 * change across a restart. Then, as the auditor: a report per framework, opened in Debian's Chromium
 * (no console error, every chart drawn, screenshots kept in .cache/artifacts/), `report verify` passing
 * on each file and failing on an edited one, and the figures recomputed from an export matching.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey, rotateSigningKey } from '../../gateway/audit/checkpoint.js';
import { createAuditLog } from '../../gateway/audit/log.js';
import { openStore } from '../../gateway/store/index.js';
import type { AuditRecord } from '../../src/shared/audit.js';
import { parseExport } from '../../src/shared/audit-export.js';
import { type ComplianceReport, type ControlResult, embeddedReport } from '../../src/shared/report/index.js';
import { type Stack, startStack } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
    masking:
      - { columns: [public.customers.ssn, public.customers.card_pan], mask: partial }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: migrate, allow: [read, write, ddl, transaction, session] }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: identity-admins
    subjects: [rita@example.com]
    admin: true
  - name: auditors
    groups: [audit]
    audit: true
`;
/** The configuration after the restart: one more masking rule (policy drift the report must show). */
const POLICIES_V2 = POLICIES.replace(
  '      - { columns: [public.customers.ssn, public.customers.card_pan], mask: partial }',
  '      - { columns: [public.customers.ssn, public.customers.card_pan], mask: partial }\n      - { columns: [public.customers.email], mask: email-domain }',
);

const ARTIFACTS = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '.cache', 'artifacts');
const FRAMEWORKS = ['soc2', 'pci-dss-4', 'nist-800-53'] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  limitMs = 30_000,
): Promise<T> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}`);
    await sleep(150);
  }
}

function psql(url: string, sql: string) {
  return spawnSync('psql', ['-X', '-At', url], { encoding: 'utf8', timeout: 30_000, input: sql });
}

function runPsql(url: string, sql: string): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, '-c', sql], { stdio: 'ignore' });
  return { child, done: new Promise((r) => child.on('exit', (code) => r(code))) };
}

/** A request with a forged bearer token: one failed authentication on the record. */
function forgedLogin(stack: Stack): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      new URL('/v1/whoami', stack.gatewayUrl),
      { headers: { authorization: 'Bearer not.a.token' }, ca: readFileSync(stack.certs!.caCert) },
      (res) => {
        res.resume();
        res.on('end', () => resolvePromise(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('hoopctl report: signed compliance evidence from a real period', () => {
  let stack: Stack;
  let alice: string;
  let rita: string;
  let aubrey: string;
  let bot: string;
  let storeDir: string;
  let keys: { old: string; current: string };
  let since: string;
  let until: string;
  const out = join(tmpdir(), `hoop-report-${process.pid}-${Date.now()}`);
  const file = (name: string) => join(out, name);
  /** The report in a JSON file, or the signed JSON embedded in an HTML or Markdown one. */
  const reportOf = (name: string) =>
    name.endsWith('.json')
      ? (JSON.parse(readFileSync(file(name), 'utf8')) as ComplianceReport)
      : embeddedReport(readFileSync(file(name), 'utf8'))!;
  const control = (r: ComplianceReport, id: string) => r.controls.find((c) => c.id === id) as ControlResult;

  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    since = new Date(Date.now() - 60_000).toISOString();
    stack = await startStack({ policies: POLICIES });
    storeDir = join(dirname(stack.configFile), 'hoop-data');
    [alice, rita, aubrey] = await Promise.all([
      stack.login('alice@example.com'),
      stack.login('rita@example.com'),
      stack.login('aubrey@example.com'),
    ]);
    bot = join(out, 'bot-home');
    mkdirSync(bot);

    // alice: an allowed read of masked columns and a refused GRANT, with psql through hoopctl connect.
    const tunnel = await stack.connect(alice);
    const first = psql(
      tunnel.url,
      'select name, ssn from customers order by id limit 2;\ngrant select on customers to public;\n',
    );
    expect(first.stdout).toContain('Ada Example|');
    expect(first.stdout).not.toContain('000-12-3456');
    expect(first.stderr).toMatch(/denied by rule "no-admin"/);

    // alice: a change held for review; rita approves it and the waiting psql finishes.
    const held = runPsql(tunnel.url, "update customers set country = 'GB' where id = 1");
    const id = await eventually('the approval request', async () => {
      const list = await stack.cli(rita, ['approvals', '--json']);
      return (JSON.parse(list.stdout).approvals as { id: string; status: string }[]).find(
        (a) => a.status === 'pending',
      )?.id;
    });
    const approve = await stack.cli(rita, ['approve', String(id), '--comment', 'ticket OPS-1']);
    expect(approve.code, approve.stderr).toBe(0);
    expect(await held.done).toBe(0);
    tunnel.stop();

    // ci-bot: a migration by exec (its normal path), and an interactive tunnel (an exception to review).
    const migrate = await stack.cli(bot, ['exec', 'prod-db', '-c', 'create table report_demo (id int)'], {
      env: stack.ciEnv(),
    });
    expect(migrate.code, migrate.stderr).toBe(0);
    const botTunnel = await stack.connect(bot, 'prod-db', { env: stack.ciEnv() });
    expect(psql(botTunnel.url, 'select 1;').stdout.trim()).toBe('1');
    botTunnel.stop();

    // A forged token, then a revocation (alice refused) and a restore, by the identity admin.
    expect(await forgedLogin(stack)).toBe(401);
    const revoke = await stack.cli(rita, [
      'identities',
      'revoke',
      'alice@example.com',
      '--reason',
      'left the team',
    ]);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await stack.cli(alice, ['exec', 'prod-db', '-c', 'select 1'])).code).toBe(3);
    const restore = await stack.cli(rita, [
      'identities',
      'restore',
      'alice@example.com',
      '--reason',
      'rehired',
    ]);
    expect(restore.code, restore.stderr).toBe(0);

    // A restart with a rotated signing key and one more masking rule.
    await stack.restartGateway({
      graceful: true,
      beforeStart: async () => {
        writeFileSync(
          stack.configFile,
          readFileSync(stack.configFile, 'utf8').replace(POLICIES, POLICIES_V2),
        );
        const store = await openStore({ path: storeDir });
        const old = loadOrCreateSigningKey({ dataDir: storeDir });
        const fresh = await rotateSigningKey(store, storeDir);
        // The records-level equivalent of the rotation command the audit stream adds.
        const log = await createAuditLog(store, { signingKey: fresh });
        await log.append({
          type: 'audit.key_rotated',
          data: { old_key_id: old.keyId, new_key_id: fresh.keyId },
        });
        await log.close();
        await store.close();
      },
    });
    const retired = readdirSync(storeDir).find((f) => f.endsWith('.retired.pub.pem'))!;
    keys = { old: join(storeDir, retired), current: join(storeDir, 'audit-signing-key.pub.pem') };

    // After the restart: alice's masked read again, by exec; the auditor looks at sessions.
    const after = await stack.cli(alice, [
      'exec',
      'prod-db',
      '-c',
      'select email, card_pan from customers where id = 2',
    ]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).not.toContain('brian@example.org');
    const listed = await stack.cli(aubrey, ['sessions', 'list', '--since', '1h', '--json']);
    const session = (JSON.parse(listed.stdout).sessions as { id: string }[])[0]!.id;
    const reads = await Promise.all([
      stack.cli(aubrey, ['sessions', 'show', session]),
      stack.cli(aubrey, ['sessions', 'replay', session, '--speed', '0']),
      stack.cli(aubrey, ['audit', 'verify']),
    ]);
    for (const r of reads) expect(r.code, r.stderr).toBe(0);
    await sleep(50); // session.ended of the last exec lands before the period's end
    until = new Date().toISOString();
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('makes a report per framework, each with every control, its evidence and exceptions', async () => {
    const period = ['--since', since, '--until', until];
    const made = await Promise.all([
      ...FRAMEWORKS.map((f) =>
        stack.cli(aubrey, ['report', '--framework', f, ...period, '-o', file(`${f}.html`)]),
      ),
      stack.cli(aubrey, ['report', '--framework', 'all', ...period, '-o', file('all.json')]),
      stack.cli(aubrey, ['report', '--framework', 'all', ...period, '--format', 'md']),
    ]);
    for (const r of made) expect(r.code, r.stderr).toBe(0);
    const md = made.at(-1)!;
    writeFileSync(file('all.md'), md.stdout);
    expect(md.stdout).toMatch(/^# Compliance report — SOC 2 · PCI DSS v4\.0 · NIST SP 800-53/);
    expect(reportOf('all.json').controls).toHaveLength(
      FRAMEWORKS.reduce((n, f) => n + reportOf(`${f}.html`).controls.length, 0),
    );

    const soc2 = reportOf('soc2.html');
    expect(soc2.controls.map((c) => c.id)).toEqual(['CC6.1', 'CC6.2', 'CC6.3', 'CC6.6', 'CC7.2', 'CC8.1']);
    expect(soc2.chain_heads[0]).toMatchObject({ chain: 'main', seq: expect.any(Number) });
    expect(control(soc2, 'CC6.3').evidence).toMatchObject({ approvals_granted: 1, self_approvals: 0 });
    expect(control(soc2, 'CC8.1').evidence).toMatchObject({
      configuration_loads: 2,
      configuration_changes: 1,
    });
    expect(control(soc2, 'CC8.1').exceptions.map((e) => e.why)).toContainEqual(
      expect.stringMatching(/configuration changed at start: \+masking:engineers\/public\.customers\.email/),
    );
    expect(control(soc2, 'CC6.2').evidence).toMatchObject({ revocations: 1, restores: 1 });

    const pci = reportOf('pci-dss-4.html');
    expect(control(pci, '10.2.1.1').evidence).toMatchObject({
      statements_touching_masked_columns: 2,
      by_identity: [
        expect.objectContaining({
          subject: 'alice@example.com',
          statements: 2,
          columns: ['public.customers.card_pan', 'public.customers.email', 'public.customers.ssn'],
        }),
      ],
    });
    expect(control(pci, '10.2.1.2').exceptions).toContainEqual(
      expect.objectContaining({
        why: expect.stringMatching(/service identity ci-bot opened an interactive tunnel/),
      }),
    );
    expect(control(pci, '10.2.1.3').evidence.by_action).toEqual({
      'audit.verify': 1,
      'sessions.list': 1,
      'sessions.replay': 1,
      'sessions.show': 1,
    });
    expect((control(pci, '10.2.1.4').evidence.authentications_failed as number) >= 2).toBe(true);
    expect(control(pci, '10.2.1.4').evidence.refusals).toBe(1);
    expect(control(pci, '10.2.1.5').evidence).toMatchObject({ signing_key_rotations: 1, revocations: 1 });
    expect(control(pci, '10.3.2').evidence).toMatchObject({ chain_verified: true });
    expect(control(pci, '7.2.5').evidence.machines).toEqual([
      expect.objectContaining({ subject: 'ci-bot', kind: 'service', sessions: 2, interactive_sessions: 1 }),
    ]);
    expect(control(pci, '7.2.5').enforced.join(' ')).toMatch(
      /ci-bot \(service\) may: "ci-deploy" on prod-db/,
    );

    const nist = reportOf('nist-800-53.html');
    expect(nist.controls.map((c) => c.id)).toEqual(
      expect.arrayContaining([
        'AC-2',
        'AC-6',
        'AU-2',
        'AU-3',
        'AU-9',
        'AU-9(3)',
        'AU-10',
        'AU-11',
        'IA-2',
        'IA-5',
        'IA-9',
      ]),
    );
    for (const c of [...soc2.controls, ...pci.controls, ...nist.controls]) {
      expect(c.enforced.length, c.id).toBeGreaterThan(0);
      expect(c.exceptions.length, c.id).toBeLessThanOrEqual(c.exceptions_total);
    }
    expect(control(nist, 'IA-2').outside_scope.join(' ')).toMatch(/Multi-factor authentication/);

    // Only auditors: alice is refused (exit 4), and the report itself was an audit.accessed record.
    expect((await stack.cli(alice, ['report', '--framework', 'soc2'])).code).toBe(4);
    const exported = await stack.cli(aubrey, ['sessions', 'export', '--since', '1h']);
    const accessed = parseExport(exported.stdout).records.filter(
      (r: AuditRecord) => r.type === 'audit.accessed',
    );
    expect(accessed.map((r) => r.data.action)).toEqual(
      expect.arrayContaining(['sessions.list', 'report', 'sessions.export']),
    );
    expect(accessed.find((r) => r.data.action === 'report')?.identity?.subject).toBe('aubrey@example.com');
  }, 120_000);

  it('opens in headless Chromium with every chart drawn and no console error; screenshots kept', async () => {
    const browser: Browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    try {
      for (const f of FRAMEWORKS) {
        const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
        const problems: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
        });
        page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
        page.on('request', (r) => {
          if (!r.url().startsWith('file:')) problems.push(`network request: ${r.url()}`);
        });
        await page.goto(`file://${file(`${f}.html`)}`);
        const charts = await page.$$eval('svg.chart[data-chart]', (svgs) =>
          svgs.map((s) => ({
            name: s.getAttribute('data-chart'),
            marks: s.querySelectorAll('rect, circle, polyline').length,
            width: s.getBoundingClientRect().width,
          })),
        );
        expect(charts.map((c) => c.name)).toEqual([
          'statements-per-day',
          'refusals-per-day',
          'approval-latency',
          'sensitive-access',
        ]);
        for (const c of charts) {
          expect(c.marks, `${f} ${c.name} draws nothing`).toBeGreaterThan(0);
          expect(c.width).toBeGreaterThan(200);
        }
        expect(await page.locator('section.control').count()).toBe(reportOf(`${f}.html`).controls.length);
        await page.screenshot({ path: join(ARTIFACTS, `report-${f}.png`), fullPage: true });
        if (f === 'pci-dss-4')
          await page.pdf({ path: join(ARTIFACTS, `report-${f}.pdf`), format: 'A4', printBackground: true });
        expect(problems, f).toEqual([]);
        await page.close();
      }
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('report verify: passes with the pinned key, fails on an edited file or another key', async () => {
    // A changed verdict in the visible HTML: the document's signature no longer matches.
    const html = readFileSync(file('soc2.html'), 'utf8');
    writeFileSync(
      file('edited.html'),
      html.replace('<span class="badge review">', '<span class="badge ok">'),
    );
    // A changed figure in the JSON.
    const json = reportOf('all.json');
    control(json, '10.2.1.4').evidence.refusals = 0;
    writeFileSync(file('edited.json'), JSON.stringify(json));
    const verify = (name: string, ...args: string[]) =>
      stack.cli(aubrey, ['report', 'verify', file(name), ...args]);
    const [html1, md, editedHtml, editedJson, oldKey, noKey] = await Promise.all([
      verify('soc2.html', '--public-key', keys.current),
      verify('all.md', '--public-key', keys.current),
      verify('edited.html', '--public-key', keys.current),
      verify('edited.json', '--public-key', keys.current),
      verify('soc2.html', '--public-key', keys.old),
      verify('soc2.html'),
    ]);
    for (const ok of [html1, md]) {
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).toMatch(/signature valid/);
    }
    expect(editedHtml.code).toBe(1);
    expect(editedHtml.stderr).toMatch(/signature INVALID/);
    expect(editedJson.code).toBe(1);
    expect(oldKey.code).toBe(1); // the retired key did not sign it
    expect(noKey.code).toBe(2); // a key carried by the report itself is never trusted
  }, 120_000);

  it('report verify --export: every figure recomputed from an export of the period matches', async () => {
    const exp = await stack.cli(aubrey, [
      'sessions',
      'export',
      '--since',
      since,
      '--until',
      until,
      '-o',
      file('period.jsonl'),
    ]);
    expect(exp.code, exp.stderr).toBe(0);
    const pinned = ['--public-key', keys.old, '--public-key', keys.current];
    const names = ['all.json', 'pci-dss-4.html', 'all.md'];
    const checks = await Promise.all(
      names.map((name) =>
        stack.cli(aubrey, [
          'report',
          'verify',
          file(name),
          ...pinned,
          '--export',
          file('period.jsonl'),
          '--json',
        ]),
      ),
    );
    checks.forEach((ok, i) => {
      expect(ok.code, `${names[i]}: ${ok.stdout}${ok.stderr}`).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, figures: { ok: true, problems: [] } });
    });
    // An export missing one refusal does not match (and no longer verifies).
    const lines = readFileSync(file('period.jsonl'), 'utf8').split('\n');
    const cut = lines.filter((l) => !l.includes('"type":"policy.blocked"'));
    writeFileSync(file('cut.jsonl'), cut.join('\n'));
    const bad = await stack.cli(aubrey, [
      'report',
      'verify',
      file('all.json'),
      ...pinned,
      '--export',
      file('cut.jsonl'),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/figures do NOT match/);
    expect(bad.stderr).toMatch(/refusals/);
  }, 120_000);
});
