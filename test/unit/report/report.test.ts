/**
 * The report core on a hand-made chain: which records become which figures and exceptions, the period
 * and connection scope, signatures of JSON, HTML and Markdown (and edits detected), recomputation
 * matching exactly, and memory staying bounded however many records and sources come by.
 */
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../../src/shared/audit.js';
import { parseConfig } from '../../../src/shared/config/load.js';
import { configLoadedData, diffSummaries, summarizeConfig } from '../../../src/shared/config/summary.js';
import {
  buildReport,
  type ComplianceReport,
  compareFigures,
  EvidenceCollector,
  embeddedReport,
  PeriodReader,
  parseFrameworks,
  pinnedKey,
  recomputedFigures,
  renderHtml,
  renderMarkdown,
  renderSigned,
  verifyDocument,
  verifyReportSignature,
} from '../../../src/shared/report/index.js';
import { ALICE, AUBREY, at, CI, chain, checkpointOf, RITA, started, statement, testKey } from './chain.js';

const CONFIG = parseConfig(
  `
listen: { address: 127.0.0.1:8443, insecure_loopback: true }
identity: { issuers: [ { issuer: https://idp.example.com, audience: gw, cli_client_id: hoopctl } ] }
connections: [ { name: prod-db, host: db, database: shop, user: gw, password_env: P } ]
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers] }
    masking:
      - { columns: [public.customers.ssn], mask: partial }
  - name: ci-deploy
    groups: [ci-deploy]
    connections: [prod-db]
    rules: [ { name: migrate, allow: [read, write, ddl] } ]
  - { name: auditors, groups: [audit], audit: true }
`,
  'test.yaml',
);

/** Five days of traffic around a period of March 2–5. */
function demoRecords(): AuditRecord[] {
  return chain([
    started(at(1), ALICE, 's0'), // before the period
    { time: at(2, 8), type: 'config.loaded', data: { hash: 'h1', items: {} } },
    started(at(2, 9), ALICE, 's1'),
    statement(at(2, 9, 1), ALICE, 's1', {
      masked_columns: [
        { column: 'ssn', position: 1, mask: 'partial', rule: 'm', sources: ['public.customers.ssn'] },
      ],
    }),
    statement(at(2, 9, 2), ALICE, 's1', {
      class: 'dcl',
      decision: 'deny',
      rule: 'no-admin',
      text: 'grant all',
    }),
    {
      time: at(2, 9, 2, 1),
      type: 'policy.blocked',
      identity: ALICE,
      source: '10.0.0.5:40000',
      connection: 'prod-db',
      session: 's1',
      data: { rule: 'no-admin', reason: 'dcl is denied', text: 'grant all' },
    },
    statement(at(2, 9, 3), ALICE, 's1', {
      class: 'write',
      decision: 'approve',
      approval_id: 7,
      text: 'update x',
    }),
    {
      time: at(2, 9, 3, 1),
      type: 'approval.requested',
      identity: ALICE,
      connection: 'prod-db',
      session: 's1',
      data: { approval_id: 7, requester: 'alice' },
    },
    {
      time: at(2, 9, 5, 1),
      type: 'approval.granted',
      identity: RITA,
      connection: 'prod-db',
      data: { approval_id: 7, requester: 'alice', status: 'approved' },
    },
    statement(at(2, 10), ALICE, 's1', {
      class: 'ddl',
      decision: 'allow',
      rule: 'oops',
      text: 'drop table t',
    }),
    started(at(3), CI, 's2', 'connect'),
    statement(at(3, 10, 1), CI, 's2', { class: 'ddl', text: 'create table t (a int)' }),
    started(at(3, 11), CI, 's3', 'exec'),
    {
      time: at(3, 12),
      type: 'auth.failed',
      source: '203.0.113.9:1111',
      data: { reason: 'malformed', count: 40 },
    },
    { time: at(3, 12, 1), type: 'auth.failed', source: '203.0.113.9:2222', data: { reason: 'expired' } },
    {
      time: at(4),
      type: 'identity.revoked',
      identity: RITA,
      data: { issuer: ALICE.issuer, subject: 'alice', reason: 'left' },
    },
    statement(at(4, 11), ALICE, 's1', { text: 'select after revoke' }),
    {
      time: at(4, 12),
      type: 'identity.restored',
      identity: RITA,
      data: { issuer: ALICE.issuer, subject: 'alice' },
    },
    {
      time: at(4, 13),
      type: 'config.loaded',
      data: {
        hash: 'h2',
        items: {},
        diff: { added: ['rule:engineers/x'], removed: [], changed: ['policy:engineers'] },
      },
    },
    { time: at(4, 14), type: 'audit.key_rotated', data: { old_key_id: 'aaaa', new_key_id: 'bbbb' } },
    { time: at(4, 15), type: 'audit.accessed', identity: AUBREY, data: { action: 'sessions.export' } },
    { ...statement(at(4, 16), { ...ALICE, subject: 'bob', name: 'bob' }, 's9', {}), connection: 'other' },
    { ...statement(at(4, 17), CI, 's8', {}), connection: 'staging' },
    started(at(6), ALICE, 's4'), // after the period
  ]);
}

const SCOPE = { from: at(2, 0), to: at(5, 0), connection: 'prod-db' };

function collect(records: AuditRecord[], scope = SCOPE): EvidenceCollector {
  const ev = new EvidenceCollector(scope);
  for (const r of records) ev.add(r);
  ev.finish();
  return ev;
}

function report(records = demoRecords(), frameworks = parseFrameworks(['all'])): ComplianceReport {
  return buildReport(collect(records), {
    frameworks,
    config: CONFIG,
    chainHeads: [{ chain: 'main', seq: records.length, hash: records.at(-1)!.hash }],
    gatewayVersion: 'test',
    generatedAt: at(5, 1),
    connection: 'prod-db',
  });
}

const control = (r: ComplianceReport, id: string) => r.controls.find((c) => c.id === id)!;

describe('evidence from records', () => {
  it('counts only the period and the connection (gateway-wide records stay in)', () => {
    const ev = collect(demoRecords());
    // 2 outside the period, 2 on other connections.
    expect(ev.records).toBe(demoRecords().length - 4);
    expect(ev.statements).toMatchObject({ total: 6, allow: 4, deny: 1, approve: 1, sensitive: 1 });
  });

  it('turns records into each control’s figures and exceptions', () => {
    const r = report();
    expect(r.controls.map((c) => c.id)).toContain('CC6.1');
    expect(r.controls.map((c) => c.id)).toContain('10.2.1.3');
    expect(r.controls.map((c) => c.id)).toContain('AU-9(3)');
    expect(control(r, '10.2.1.4').evidence).toMatchObject({
      authentications_failed: 41,
      failed_by_reason: { expired: 1, malformed: 40 },
      top_failing_sources: [{ source: '203.0.113.9', failures: 41 }],
      refusals: 1,
    });
    expect(control(r, '10.2.1.1').evidence).toMatchObject({
      statements_touching_masked_columns: 1,
      by_identity: [{ subject: 'alice', statements: 1, columns: ['public.customers.ssn'] }],
    });
    // A human's DDL without an approval is an exception; the pipeline's is not.
    const cc81 = control(r, 'CC8.1');
    expect(cc81.evidence).toMatchObject({
      changes_with_approval: 1,
      changes_by_machine_identities: 1,
      changes_by_people_without_approval: 1,
      configuration_loads: 2,
      configuration_changes: 1,
    });
    expect(cc81.exceptions.map((e) => e.why)).toEqual([
      expect.stringMatching(/^ddl by alice@example.com ran without an approval .*drop table t/),
      expect.stringMatching(/configuration changed at start: \+rule:engineers\/x ~policy:engineers/),
    ]);
    expect(control(r, '8.6.1').exceptions).toEqual([
      expect.objectContaining({
        session: 's2',
        why: expect.stringMatching(/service identity ci-bot opened an interactive tunnel/),
      }),
    ]);
    expect(control(r, 'CC6.2').exceptions.map((e) => e.why)).toEqual([
      expect.stringMatching(/alice@example.com ran a statement after being revoked/),
      expect.stringMatching(/restored alice without giving a reason/),
    ]);
    expect(control(r, '10.2.1.5').evidence).toMatchObject({
      revocations: 1,
      restores: 1,
      signing_key_rotations: 1,
      key_rotations: [expect.objectContaining({ old: 'aaaa', new: 'bbbb' })],
    });
    expect(control(r, '10.2.1.3').evidence).toMatchObject({
      audit_log_accesses: 1,
      by_action: { 'sessions.export': 1 },
    });
    expect(control(r, 'CC6.3').evidence).toMatchObject({
      approvals_requested: 1,
      approvals_granted: 1,
      self_approvals: 0,
    });
    expect(r.charts.approval_latency).toMatchObject({ decided: 1, mean_seconds: 120, max_seconds: 120 });
    expect(r.charts.statements_per_day.map((d) => d.day)).toEqual(['2026-03-02', '2026-03-03', '2026-03-04']);
    expect(r.charts.refusals_per_day[1]).toEqual({ day: '2026-03-03', refusals: 0, failed_logins: 41 });
    // Every control says what is outside hoopctl, and what it enforces.
    for (const c of r.controls) {
      expect(c.enforced.length, c.id).toBeGreaterThan(0);
      expect(Array.isArray(c.outside_scope), c.id).toBe(true);
    }
    expect(control(r, 'IA-2').outside_scope.join(' ')).toMatch(/Multi-factor/);
    expect(control(r, 'CC6.2').outside_scope.join(' ')).toMatch(/Joiner\/mover\/leaver/);
    expect(control(r, '10.3.3').outside_scope.join(' ')).toMatch(/Backups of the store/);
  });

  it('flags an approver deciding their own request', () => {
    const records = chain([
      {
        time: at(2),
        type: 'approval.requested',
        identity: ALICE,
        data: { approval_id: 1, requester: 'alice' },
      },
      {
        time: at(2, 11),
        type: 'approval.granted',
        identity: ALICE,
        data: { approval_id: 1, requester: 'alice', status: 'approved' },
      },
    ]);
    expect(control(report(records), 'CC6.3').exceptions).toEqual([
      { seq: 2, why: 'alice@example.com decided their own request #1' },
    ]);
  });

  it('a period of decades draws at most ten years of days, from the first active one', () => {
    const ev = collect(demoRecords(), {
      from: '1970-01-01T00:00:00.000000Z',
      to: '2100-01-01T00:00:00.000000Z',
    });
    const days = ev.charts().statements_per_day;
    expect(days[0]?.day).toBe('2026-03-02');
    expect(days.length).toBeLessThanOrEqual(3660);
  });

  it('stays bounded: a flood of sources and records keeps a few thousand entries', () => {
    const ev = new EvidenceCollector({ from: at(1), to: at(30) });
    const base = chain([
      { time: at(2), type: 'auth.failed', source: '1.1.1.1:1', data: { reason: 'malformed' } },
    ])[0]!;
    for (let i = 0; i < 60_000; i++) {
      ev.add({ ...base, seq: i + 1, source: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:9` });
    }
    expect(ev.auth.failed).toBe(60_000);
    expect(ev.failedBySource.size).toBeLessThanOrEqual(10_001);
    expect(ev.exceptions.failed_auth.kept.length).toBe(50);
    expect(ev.exceptions.failed_auth.total).toBe(60_000);
  });
});

describe('signatures and recomputation', () => {
  const key = testKey();
  const other = testKey();
  const signer = { keyId: key.key.key_id, privateKey: key.privateKey };

  it('JSON: valid with the pinned key; another key or an edited figure fails', () => {
    const signed = JSON.parse(renderSigned(report(), 'json', signer)) as ComplianceReport;
    expect(verifyReportSignature(signed, [pinnedKey(key.pem)])).toEqual({ ok: true, key_id: key.key.key_id });
    expect(verifyReportSignature(signed, [pinnedKey(other.pem)])).toMatchObject({
      ok: false,
      reason: /not among the pinned keys/,
    });
    const edited = structuredClone(signed);
    control(edited, '10.2.1.4').evidence.authentications_failed = 0;
    expect(verifyReportSignature(edited, [pinnedKey(key.pem)])).toMatchObject({
      ok: false,
      reason: /does not match/,
    });
  });

  it('HTML and Markdown: the whole document is signed, and carries the signed JSON', () => {
    for (const format of ['html', 'md'] as const) {
      const text = renderSigned(report(), format, signer);
      expect(verifyDocument(text, [pinnedKey(key.pem)]), format).toMatchObject({ ok: true });
      const inner = embeddedReport(text)!;
      expect(verifyReportSignature(inner, [pinnedKey(key.pem)]), format).toMatchObject({ ok: true });
      const edited = text.replace('41', '4');
      expect(verifyDocument(edited, [pinnedKey(key.pem)]), format).toMatchObject({ ok: false });
      expect(verifyDocument(`${text}<p>added</p>\n`, [pinnedKey(key.pem)]).ok, format).toBe(false);
    }
  });

  it('the HTML needs no script and no inline style, and escapes what records say', () => {
    const records = demoRecords();
    records[5] = { ...records[5]!, data: { ...records[5]!.data, reason: '<script>alert(1)</script>' } };
    const html = renderHtml(report(records));
    expect(html).toContain('&lt;script&gt;alert(1)');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('<script type="application/json" id="hoop-report">');
    expect(html).not.toContain('<script>alert');
    expect(html).not.toMatch(/\sstyle="/);
    expect(html.match(/<svg class="chart" data-chart="/g)).toHaveLength(4);
    const md = renderMarkdown(report(records));
    expect(md).not.toContain('<script>alert');
    expect(md).toContain('&lt;script&gt;');
  });

  it('a recomputation from the same records matches exactly; a changed record does not', () => {
    const key2 = testKey();
    const records = demoRecords();
    const checkpoints = [checkpointOf(records.at(-1)!, key2)];
    const reader = new PeriodReader(SCOPE, checkpoints, [key2.key]);
    for (const r of records) reader.add(r);
    const ev = reader.finish();
    expect(ev.verified).toBe(true);
    const r = buildReport(ev, {
      frameworks: parseFrameworks(['soc2', 'pci-dss-4']),
      config: CONFIG,
      chainHeads: [],
      gatewayVersion: 'test',
      generatedAt: at(5),
      connection: 'prod-db',
    });
    expect(r.framework).toBe('soc2,pci-dss-4');
    const again = new PeriodReader(SCOPE, checkpoints, [key2.key]);
    for (const rec of records) again.add(rec);
    expect(compareFigures(r, recomputedFigures(again.finish(), r.frameworks))).toEqual([]);

    const fewer = collect(records.filter((x) => x.type !== 'auth.failed'));
    const problems = compareFigures(r, recomputedFigures(fewer, r.frameworks));
    expect(problems).toContain('10.2.1.4 authentications_failed: the report says 41, the export gives 0');
  });
});

describe('config.loaded', () => {
  it('names what was added, removed and changed', () => {
    const before = summarizeConfig(CONFIG);
    const next = structuredClone(CONFIG);
    next.policies[0]!.rules.push({ ...next.policies[0]!.rules[0]!, name: 'more' });
    next.policies.pop();
    next.retention.days = 30;
    expect(diffSummaries(before, summarizeConfig(next))).toEqual({
      added: ['rule:engineers/more'],
      removed: ['policy:auditors'],
      changed: ['settings:retention'],
    });
    const data = configLoadedData(next, { seq: 9, data: configLoadedData(CONFIG) });
    expect(data.previous).toEqual({ seq: 9, hash: configLoadedData(CONFIG).hash });
    expect(data.diff?.removed).toEqual(['policy:auditors']);
    expect(configLoadedData(CONFIG).diff).toBeUndefined();
  });
});
