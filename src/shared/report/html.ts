/**
 * The report as one self-contained HTML page: inline SVG charts, one stylesheet (allowed by its hash in
 * the page's own Content-Security-Policy), no script at all — the signed JSON rides along in a
 * non-executable `application/json` block for `hoopctl report verify`. Prints to PDF with each control
 * kept on one page where it fits and each framework starting a new page. Pure.
 */
import { createHash } from 'node:crypto';
import {
  escapeXml as esc,
  latencyChart,
  refusalsChart,
  sensitiveAccessChart,
  statementsPerDayChart,
} from './charts.js';
import { FRAMEWORK_NAMES, FRAMEWORK_TITLES } from './controls.js';
import { embeddableJson } from './sign.js';
import type { ComplianceReport, ControlResult, EvidenceValue, FrameworkId } from './types.js';

const STYLE = `
:root{color-scheme:light;--ink:#1d2330;--muted:#5b6475;--line:#d9dde5;--allow:#2e7d32;--deny:#c62828;--approve:#b26a00;--failed:#6a1b9a;--machine:#1565c0;--bg:#fff;--soft:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 12px;border-bottom:2px solid var(--ink);padding-bottom:4px}
h3{font-size:16px;margin:0 0 4px}h4{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:12px 0 4px}
.meta{color:var(--muted);margin:0 0 16px}.meta code{color:var(--ink)}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid var(--line)}
th{font-weight:600;background:var(--soft)}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px;break-inside:avoid}
figcaption{font-weight:600;margin-bottom:4px}
.chart{display:block;height:auto}
.chart .grid{stroke:var(--line);stroke-width:1}.chart .tick,.chart .legend{font-size:11px;fill:var(--muted)}
.chart .empty{font-size:14px;fill:var(--muted)}
.chart .allow{fill:var(--allow)}.chart .deny{fill:var(--deny);stroke:var(--deny)}.chart .approve{fill:var(--approve)}
.chart .failed{fill:var(--failed);stroke:var(--failed)}.chart .machine{fill:var(--machine)}
.chart .line{fill:none;stroke-width:2}
.control{border:1px solid var(--line);border-radius:6px;padding:12px 16px;margin:12px 0;break-inside:avoid}
.control header{display:flex;gap:12px;align-items:baseline;justify-content:space-between}
.badge{font-size:12px;font-weight:600;border-radius:10px;padding:1px 8px;white-space:nowrap}
.badge.ok{background:#e8f5e9;color:var(--allow)}.badge.review{background:#fdecea;color:var(--deny)}
.title{color:var(--muted);margin:0 0 8px}
ul{margin:4px 0 8px;padding-left:20px}
.outside li{color:var(--muted)}
.framework{break-before:page}
.summary td:first-child{white-space:nowrap}
.evidence th{width:34%;font-weight:500}.evidence td{font-variant-numeric:tabular-nums}
footer{margin-top:32px;color:var(--muted);border-top:1px solid var(--line);padding-top:8px}
@media (max-width:760px){.charts{grid-template-columns:1fr}main{padding:12px}}
@media print{body{font-size:11px}main{max-width:none;padding:0}.charts{grid-template-columns:1fr 1fr}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}a{color:inherit;text-decoration:none}}
@page{size:A4;margin:14mm}
`;

/** What the page's own CSP allows: this stylesheet, by hash; nothing else (no script, no fetch). */
export const HTML_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src data:; base-uri 'none'; form-action 'none'`;

const humanize = (name: string) => name.replace(/_/g, ' ');
/** `2026-12-01T12:28:42.499000Z` → `2026-12-01 12:28:42 UTC` (the exact bound is in the JSON). */
export const readableTime = (iso: string) => iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
const fmt = (n: number) => n.toLocaleString('en-US');

function value(v: EvidenceValue): string {
  if (v === null) return '—';
  if (typeof v === 'number') return fmt(v);
  if (typeof v === 'boolean') return v ? 'yes' : '<strong>NO</strong>';
  if (typeof v === 'string') return esc(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return 'none';
    if (v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x)))
      return table(v as Record<string, EvidenceValue>[]);
    return v.map((x) => value(x)).join(', ');
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return 'none';
  return entries.map(([k, x]) => `${esc(k)}: ${value(x)}`).join(', ');
}

function table(rows: Record<string, EvidenceValue>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = columns.map((c) => `<th>${esc(humanize(c))}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${columns.map((c) => `<td${typeof r[c] === 'number' ? ' class="n"' : ''}>${value(r[c] ?? null)}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function evidenceTable(evidence: ControlResult['evidence']): string {
  const rows = Object.entries(evidence)
    .map(([k, v]) => `<tr><th scope="row">${esc(humanize(k))}</th><td>${value(v)}</td></tr>`)
    .join('');
  return `<table class="evidence"><tbody>${rows}</tbody></table>`;
}

function exceptionsBlock(c: ControlResult): string {
  if (c.exceptions_total === 0) return '<p>No exceptions in this period.</p>';
  const rows = c.exceptions
    .map(
      (e) =>
        `<tr><td class="n">${e.seq}</td><td>${e.session ? `<code>${esc(e.session)}</code>` : '—'}</td><td>${esc(e.why)}</td></tr>`,
    )
    .join('');
  const more =
    c.exceptions_total > c.exceptions.length
      ? `<p>${fmt(c.exceptions_total - c.exceptions.length)} more not listed: <code>hoopctl sessions export</code> has every record.</p>`
      : '';
  return `<table><thead><tr><th class="n">seq</th><th>session</th><th>why</th></tr></thead><tbody>${rows}</tbody></table>${more}<p class="meta">Drill in: <code>hoopctl sessions show &lt;session&gt;</code></p>`;
}

const list = (items: string[], cls = '') =>
  items.length
    ? `<ul${cls ? ` class="${cls}"` : ''}>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>`
    : '<p>Nothing.</p>';

function badge(c: ControlResult): string {
  return c.exceptions_total
    ? `<span class="badge review">${fmt(c.exceptions_total)} to review</span>`
    : '<span class="badge ok">no exceptions</span>';
}

function controlSection(c: ControlResult): string {
  return `<section class="control" id="${esc(`${c.framework}-${c.id}`)}">
<header><h3>${esc(c.id)}</h3>${badge(c)}</header>
<p class="title">${esc(c.title)}</p>
<h4>Enforced by hoopctl</h4>${list(c.enforced)}
<h4>Evidence for the period</h4>${evidenceTable(c.evidence)}
<h4>Exceptions</h4>${exceptionsBlock(c)}
<h4>Outside hoopctl</h4>${list(c.outside_scope, 'outside')}
</section>`;
}

function summary(report: ComplianceReport): string {
  const rows = report.controls
    .map(
      (c) =>
        `<tr><td><a href="#${esc(`${c.framework}-${c.id}`)}">${esc(c.id)}</a></td><td>${esc(c.title)}</td><td class="n">${fmt(c.exceptions_total)}</td></tr>`,
    )
    .join('');
  return `<table class="summary"><thead><tr><th>control</th><th>wording</th><th class="n">exceptions to review</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function charts(report: ComplianceReport): string {
  const fig = (caption: string, svg: string) =>
    `<figure><figcaption>${esc(caption)}</figcaption>${svg}</figure>`;
  return `<div class="charts">
${fig('Statements per day by decision', statementsPerDayChart(report.charts.statements_per_day))}
${fig('Refusals and failed logins over time', refusalsChart(report.charts.refusals_per_day))}
${fig('Approval decision latency', latencyChart(report.charts.approval_latency))}
${fig('Top identities by sensitive-data access', sensitiveAccessChart(report.charts.sensitive_access_top))}
</div>`;
}

export function reportTitle(report: ComplianceReport): string {
  return `Compliance report — ${report.frameworks.map((f) => FRAMEWORK_NAMES[f]).join(' · ')}`;
}

export function renderHtml(report: ComplianceReport): string {
  const heads = report.chain_heads
    .map((h) => `${esc(h.chain)} seq ${h.seq} <code>${esc(h.hash)}</code>`)
    .join('; ');
  const sections = report.frameworks
    .map(
      (f: FrameworkId) =>
        `<section class="framework"><h2>${esc(FRAMEWORK_TITLES[f])}</h2>${report.controls
          .filter((c) => c.framework === f)
          .map(controlSection)
          .join('\n')}</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${HTML_CSP}">
<title>${esc(reportTitle(report))}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${esc(reportTitle(report))}</h1>
<p class="meta">Period <strong>${esc(readableTime(report.period.from))}</strong> to <strong>${esc(readableTime(report.period.to))}</strong>${report.scope.connection ? ` · connection <strong>${esc(report.scope.connection)}</strong>` : ''} · ${fmt(report.records)} records · generated ${esc(readableTime(report.generated_at))} by hoop-gateway ${esc(report.gateway.version)}</p>
<p class="meta">Computed over chain heads: ${heads || 'none (empty log)'}${report.signature ? ` · signed by key <code>${esc(report.signature.key_id)}</code>` : ''}</p>
<h2>Summary</h2>
${summary(report)}
<h2>The period in pictures</h2>
${charts(report)}
${sections}
<footer>
<p>Check this file: <code>hoopctl report verify FILE --public-key audit-signing-key.pub.pem</code> (the signature, with the gateway key you pinned) and add <code>--export audit.jsonl</code> to recompute every figure from a verified export of the same period.</p>
<p>Exceptions are records to look at, not failures: each says why it is listed. "Outside hoopctl" says what each control needs that this gateway does not do.</p>
</footer>
</main>
<script type="application/json" id="hoop-report">${embeddableJson(report)}</script>
</body>
</html>
`;
}
