/**
 * The report's pictures as inline SVG: no script, no external file, no inline style attribute (the
 * document's one stylesheet colours them by class), so they survive a strict Content-Security-Policy
 * and print as drawn. Each chart has a <title> and a data-chart name; the numbers are also in tables.
 */
import type { ReportCharts } from './types.js';

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const W = 720;
const H = 240;
const PAD = { left: 48, right: 12, top: 16, bottom: 44 };
const plotW = W - PAD.left - PAD.right;
const plotH = H - PAD.top - PAD.bottom;
const r1 = (n: number) => Math.round(n * 10) / 10;

function frame(name: string, title: string, body: string, height = H): string {
  const id = `chart-${name}`;
  return `<svg class="chart" data-chart="${name}" role="img" aria-labelledby="${id}" viewBox="0 0 ${W} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg"><title id="${id}">${escapeXml(title)}</title>${body}</svg>`;
}

function empty(name: string, title: string): string {
  return frame(
    name,
    title,
    `<text class="empty" x="${W / 2}" y="${H / 2}" text-anchor="middle">No activity in this period</text>`,
  );
}

/** A "nice" axis maximum: 1, 2 or 5 × a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (max <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

function yAxis(max: number): string {
  const ticks = [0, max / 2, max];
  return ticks
    .map((t) => {
      const y = r1(PAD.top + plotH - (t / max) * plotH);
      return `<line class="grid" x1="${PAD.left}" y1="${y}" x2="${W - PAD.right}" y2="${y}"/><text class="tick" x="${PAD.left - 6}" y="${y + 4}" text-anchor="end">${Number.isInteger(t) ? t : t.toFixed(1)}</text>`;
    })
    .join('');
}

/** Day labels under the axis: first, last and a few between, never crowded. */
function xLabels(days: string[], xOf: (i: number) => number): string {
  const every = Math.max(1, Math.ceil(days.length / 8));
  return days
    .map((d, i) =>
      i % every === 0 || i === days.length - 1
        ? `<text class="tick" x="${r1(xOf(i))}" y="${H - PAD.bottom + 16}" text-anchor="middle">${d.slice(5)}</text>`
        : '',
    )
    .join('');
}

function legend(items: [cls: string, label: string][]): string {
  return items
    .map(
      ([cls, label], i) =>
        `<rect class="${cls}" x="${PAD.left + i * 150}" y="${H - 18}" width="10" height="10"/><text class="legend" x="${PAD.left + i * 150 + 14}" y="${H - 9}">${escapeXml(label)}</text>`,
    )
    .join('');
}

export function statementsPerDayChart(data: ReportCharts['statements_per_day']): string {
  const title = 'Statements per day by decision';
  const max = Math.max(0, ...data.map((d) => d.allow + d.deny + d.approve));
  if (data.length === 0 || max === 0) return empty('statements-per-day', title);
  const top = niceMax(max);
  const slot = plotW / data.length;
  const barW = Math.max(1, slot * 0.7);
  const bars = data
    .map((d, i) => {
      let y = PAD.top + plotH;
      const x = r1(PAD.left + i * slot + (slot - barW) / 2);
      return (['allow', 'approve', 'deny'] as const)
        .map((k) => {
          if (d[k] === 0) return '';
          const h = (d[k] / top) * plotH;
          y -= h;
          return `<rect class="${k}" x="${x}" y="${r1(y)}" width="${r1(barW)}" height="${r1(h)}"><title>${d.day}: ${d[k]} ${k}</title></rect>`;
        })
        .join('');
    })
    .join('');
  const labels = xLabels(
    data.map((d) => d.day),
    (i) => PAD.left + i * slot + slot / 2,
  );
  return frame(
    'statements-per-day',
    title,
    yAxis(top) +
      bars +
      labels +
      legend([
        ['allow', 'allowed'],
        ['approve', 'approval required'],
        ['deny', 'denied'],
      ]),
  );
}

export function refusalsChart(data: ReportCharts['refusals_per_day']): string {
  const title = 'Refusals and failed logins per day';
  const max = Math.max(0, ...data.map((d) => Math.max(d.refusals, d.failed_logins)));
  if (data.length === 0 || max === 0) return empty('refusals-per-day', title);
  const top = niceMax(max);
  const slot = plotW / data.length;
  const xOf = (i: number) => PAD.left + i * slot + slot / 2;
  const yOf = (v: number) => PAD.top + plotH - (v / top) * plotH;
  const series = (key: 'refusals' | 'failed_logins', cls: string) => {
    const points = data.map((d, i) => `${r1(xOf(i))},${r1(yOf(d[key]))}`).join(' ');
    const dots = data
      .map((d, i) =>
        d[key] > 0
          ? `<circle class="${cls}" cx="${r1(xOf(i))}" cy="${r1(yOf(d[key]))}" r="3"><title>${d.day}: ${d[key]} ${key.replace('_', ' ')}</title></circle>`
          : '',
      )
      .join('');
    return `<polyline class="line ${cls}" points="${points}"/>${dots}`;
  };
  return frame(
    'refusals-per-day',
    title,
    yAxis(top) +
      series('refusals', 'deny') +
      series('failed_logins', 'failed') +
      xLabels(
        data.map((d) => d.day),
        xOf,
      ) +
      legend([
        ['deny', 'policy refusals'],
        ['failed', 'failed authentications'],
      ]),
  );
}

export function latencyChart(data: ReportCharts['approval_latency']): string {
  const title = 'Approval decision latency (requests decided in the period)';
  const max = Math.max(0, ...data.buckets.map((b) => b.count));
  if (max === 0) return empty('approval-latency', title);
  const top = niceMax(max);
  const slot = plotW / data.buckets.length;
  const bars = data.buckets
    .map((b, i) => {
      const h = (b.count / top) * plotH;
      const x = PAD.left + i * slot + slot * 0.15;
      return `<rect class="approve" x="${r1(x)}" y="${r1(PAD.top + plotH - h)}" width="${r1(slot * 0.7)}" height="${r1(h)}"><title>${escapeXml(b.label)}: ${b.count}</title></rect><text class="tick" x="${r1(PAD.left + i * slot + slot / 2)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${escapeXml(b.label)}</text>`;
    })
    .join('');
  const note = `<text class="legend" x="${PAD.left}" y="${H - 9}">${data.decided} decided · mean ${data.mean_seconds ?? 0} s · longest ${data.max_seconds ?? 0} s</text>`;
  return frame('approval-latency', title, yAxis(top) + bars + note);
}

export function sensitiveAccessChart(data: ReportCharts['sensitive_access_top']): string {
  const title = 'Top identities by access to masked (sensitive) columns';
  if (data.length === 0) return empty('sensitive-access', title);
  const rowH = 26;
  const height = PAD.top + data.length * rowH + 20;
  const labelW = 230;
  const max = niceMax(Math.max(...data.map((d) => d.statements)));
  const rows = data
    .map((d, i) => {
      const y = PAD.top + i * rowH;
      const w = ((W - labelW - 60) * d.statements) / max;
      const name = d.identity.name ?? d.identity.subject;
      return `<text class="tick" x="${labelW - 8}" y="${y + 16}" text-anchor="end">${escapeXml(name.length > 34 ? `${name.slice(0, 33)}…` : name)}</text><rect class="${d.identity.kind === 'human' ? 'allow' : 'machine'}" x="${labelW}" y="${y + 4}" width="${r1(Math.max(1, w))}" height="16"><title>${escapeXml(name)}: ${d.statements} statements (${escapeXml(d.columns.join(', '))})</title></rect><text class="tick" x="${r1(labelW + w + 6)}" y="${y + 16}">${d.statements}</text>`;
    })
    .join('');
  return frame('sensitive-access', title, rows, height);
}
