/**
 * The report as Markdown: the same numbers as the HTML (the charts as tables), readable in a terminal
 * or a code review, with the signed JSON in a trailing comment for `hoopctl report verify`. Pure.
 */
import { FRAMEWORK_TITLES } from './controls.js';
import { readableTime, reportTitle } from './html.js';
import { embeddableJson } from './sign.js';
import type { ComplianceReport, ControlResult, EvidenceValue } from './types.js';

/** Text from records (statement text, identities) as inert Markdown: no raw HTML. */
const inert = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** Table cells: also no pipe or newline may break the table. */
const cell = (text: string) =>
  inert(text)
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
const humanize = (name: string) => name.replace(/_/g, ' ');

function value(v: EvidenceValue): string {
  if (v === null) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : '**NO**';
  if (typeof v === 'number') return v.toLocaleString('en-US');
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.length ? v.map(value).join('; ') : 'none';
  const entries = Object.entries(v);
  return entries.length ? entries.map(([k, x]) => `${k}: ${value(x)}`).join(', ') : 'none';
}

function tableOf(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function control(c: ControlResult): string {
  const evidence = tableOf(
    ['figure', 'value'],
    Object.entries(c.evidence).map(([k, v]) => [humanize(k), value(v)]),
  );
  const exceptions =
    c.exceptions_total === 0
      ? 'No exceptions in this period.'
      : `${tableOf(
          ['seq', 'session', 'why'],
          c.exceptions.map((e) => [String(e.seq), e.session ?? '—', e.why]),
        )}${c.exceptions_total > c.exceptions.length ? `\n\n${c.exceptions_total - c.exceptions.length} more not listed (see \`hoopctl sessions export\`).` : ''}`;
  const bullets = (items: string[]) =>
    items.length ? items.map((i) => `- ${inert(i)}`).join('\n') : '- Nothing.';
  return `### ${c.id} — ${c.exceptions_total ? `${c.exceptions_total} to review` : 'no exceptions'}

${c.title}

**Enforced by hoopctl**

${bullets(c.enforced)}

**Evidence for the period**

${evidence}

**Exceptions**

${exceptions}

**Outside hoopctl**

${bullets(c.outside_scope)}
`;
}

function pictures(report: ComplianceReport): string {
  const ch = report.charts;
  const active = ch.statements_per_day.filter((d) => d.allow + d.deny + d.approve > 0);
  const refusals = ch.refusals_per_day.filter((d) => d.refusals + d.failed_logins > 0);
  return `### Statements per day by decision (days with activity)

${
  active.length
    ? tableOf(
        ['day', 'allowed', 'approval required', 'denied'],
        active.map((d) => [d.day, String(d.allow), String(d.approve), String(d.deny)]),
      )
    : 'No statements in this period.'
}

### Refusals and failed logins per day (days with any)

${
  refusals.length
    ? tableOf(
        ['day', 'refusals', 'failed logins'],
        refusals.map((d) => [d.day, String(d.refusals), String(d.failed_logins)]),
      )
    : 'None in this period.'
}

### Approval decision latency

${tableOf(
  ['latency', 'decisions'],
  ch.approval_latency.buckets.map((b) => [b.label, String(b.count)]),
)}

${ch.approval_latency.decided} decided; mean ${ch.approval_latency.mean_seconds ?? '—'} s, longest ${ch.approval_latency.max_seconds ?? '—'} s.

### Top identities by sensitive-data access

${
  ch.sensitive_access_top.length
    ? tableOf(
        ['identity', 'kind', 'statements', 'masked columns'],
        ch.sensitive_access_top.map((t) => [
          t.identity.name ?? t.identity.subject,
          t.identity.kind ?? '',
          String(t.statements),
          t.columns.join(', '),
        ]),
      )
    : 'No statement touched a masked column in this period.'
}
`;
}

export function renderMarkdown(report: ComplianceReport): string {
  const heads = report.chain_heads.map((h) => `${h.chain} seq ${h.seq} \`${h.hash}\``).join('; ');
  const sections = report.frameworks
    .map(
      (f) =>
        `## ${FRAMEWORK_TITLES[f]}\n\n${report.controls
          .filter((c) => c.framework === f)
          .map(control)
          .join('\n')}`,
    )
    .join('\n');
  return `# ${reportTitle(report)}

- Period: **${readableTime(report.period.from)}** to **${readableTime(report.period.to)}**${report.scope.connection ? ` (connection **${report.scope.connection}**)` : ''}
- Records: ${report.records.toLocaleString('en-US')}; generated ${readableTime(report.generated_at)} by hoop-gateway ${report.gateway.version}
- Chain heads: ${heads || 'none (empty log)'}
- Signed by key: ${report.signature ? `\`${report.signature.key_id}\`` : 'unsigned'}

## Summary

${tableOf(
  ['control', 'wording', 'exceptions'],
  report.controls.map((c) => [c.id, c.title, String(c.exceptions_total)]),
)}

## The period in numbers

${pictures(report)}
${sections}
---

Check this file: \`hoopctl report verify FILE --public-key audit-signing-key.pub.pem\`; add \`--export audit.jsonl\` to recompute every figure from a verified export of the same period.

<!-- hoop-report-json
${embeddableJson(report)}
-->
`;
}
