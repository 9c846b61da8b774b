/**
 * From finished evidence to the report: each framework's controls with their figures and exceptions,
 * and (on the gateway only) what the configuration enforces. `recomputedFigures` is the part an export
 * can recompute; `compareFigures` says where a report and a recomputation differ. Pure.
 */
import { canonicalJson } from '../audit-chain.js';
import type { GatewayConfig } from '../config/schema.js';
import { CONTROLS, type ControlDef } from './controls.js';
import type { EvidenceCollector } from './evidence.js';
import { ConfigFacts } from './facts.js';
import type { ChainHeadRef, ComplianceReport, ControlResult, FrameworkId, ReportCharts } from './types.js';
import { FRAMEWORKS, REPORT_FORMAT, REPORT_VERSION } from './types.js';

/** `all` → every framework; otherwise the named ones in the catalogue's order, each once. */
export function parseFrameworks(names: readonly string[]): FrameworkId[] {
  const wanted = new Set<string>();
  for (const name of names.flatMap((n) => n.split(','))) {
    const n = name.trim();
    if (!n) continue;
    if (n === 'all') for (const f of FRAMEWORKS) wanted.add(f);
    else if ((FRAMEWORKS as readonly string[]).includes(n)) wanted.add(n);
    else throw new Error(`unknown framework "${n}" (expected ${FRAMEWORKS.join(', ')} or all)`);
  }
  if (wanted.size === 0) throw new Error(`name a framework: ${FRAMEWORKS.join(', ')} or all`);
  return FRAMEWORKS.filter((f) => wanted.has(f));
}

export function frameworkLabel(frameworks: readonly FrameworkId[]): string {
  return frameworks.length === FRAMEWORKS.length ? 'all' : frameworks.join(',');
}

/** The recomputable part of one control. */
function figuresOf(def: ControlDef, ev: EvidenceCollector) {
  const lists = def.exceptions.map((k) => ev.exceptions[k]);
  const exceptions = lists
    .flatMap((l) => l.kept)
    .sort((a, b) => a.seq - b.seq)
    .slice(0, 50);
  return {
    evidence: def.evidence(ev),
    exceptions,
    exceptions_total: lists.reduce((n, l) => n + l.total, 0),
  };
}

export interface ReportContext {
  frameworks: FrameworkId[];
  config: GatewayConfig;
  chainHeads: ChainHeadRef[];
  gatewayVersion: string;
  generatedAt: string;
  connection?: string;
}

/** The whole report, unsigned. `ev` must be finished (every record added, verification set). */
export function buildReport(ev: EvidenceCollector, ctx: ReportContext): ComplianceReport {
  const facts = new ConfigFacts(ctx.config);
  const controls: ControlResult[] = ctx.frameworks.flatMap((framework) =>
    CONTROLS[framework].map((def) => ({
      id: def.id,
      framework,
      title: def.title,
      enforced: def.enforced(facts, ev),
      ...figuresOf(def, ev),
      outside_scope: def.outside_scope,
    })),
  );
  return {
    format: REPORT_FORMAT,
    version: REPORT_VERSION,
    framework: frameworkLabel(ctx.frameworks),
    frameworks: ctx.frameworks,
    generated_at: ctx.generatedAt,
    gateway: { version: ctx.gatewayVersion },
    period: { from: ev.scope.from, to: ev.scope.to },
    scope: ctx.connection ? { connection: ctx.connection } : {},
    chain_heads: ctx.chainHeads,
    records: ev.records,
    charts: ev.charts(),
    controls,
  };
}

export interface RecomputedFigures {
  records: number;
  charts: ReportCharts;
  controls: Pick<ControlResult, 'id' | 'evidence' | 'exceptions' | 'exceptions_total'>[];
}

export function recomputedFigures(
  ev: EvidenceCollector,
  frameworks: readonly FrameworkId[],
): RecomputedFigures {
  return {
    records: ev.records,
    charts: ev.charts(),
    controls: frameworks.flatMap((f) => CONTROLS[f].map((def) => ({ id: def.id, ...figuresOf(def, ev) }))),
  };
}

/** Where the report's figures differ from a recomputation: empty when they match exactly. */
export function compareFigures(report: ComplianceReport, again: RecomputedFigures): string[] {
  const problems: string[] = [];
  const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);
  if (report.records !== again.records)
    problems.push(`records: the report counts ${report.records}, the export ${again.records}`);
  for (const key of Object.keys(again.charts) as (keyof ReportCharts)[]) {
    if (!same(report.charts?.[key], again.charts[key])) problems.push(`charts.${key} differ`);
  }
  const byId = new Map(again.controls.map((c) => [c.id, c]));
  for (const control of report.controls) {
    const other = byId.get(control.id);
    if (!other) {
      problems.push(`${control.id}: not a control of ${report.framework}`);
      continue;
    }
    for (const [name, value] of Object.entries(other.evidence)) {
      if (!same(control.evidence?.[name], value)) {
        problems.push(
          `${control.id} ${name}: the report says ${canonicalJson(control.evidence?.[name] ?? null)}, the export gives ${canonicalJson(value)}`,
        );
      }
    }
    for (const name of Object.keys(control.evidence ?? {})) {
      if (!(name in other.evidence)) problems.push(`${control.id} ${name}: not a figure of this control`);
    }
    if (control.exceptions_total !== other.exceptions_total || !same(control.exceptions, other.exceptions)) {
      problems.push(
        `${control.id} exceptions: the report lists ${control.exceptions_total}, the export ${other.exceptions_total}`,
      );
    }
  }
  if (report.controls.length !== again.controls.length)
    problems.push(
      `controls: the report has ${report.controls.length}, the frameworks have ${again.controls.length}`,
    );
  return problems;
}
