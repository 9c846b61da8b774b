/**
 * The compliance report core, shared by the gateway (computes, signs, serves) and the CLI (verifies,
 * recomputes from an export). Pure: records in, figures and documents out.
 */
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { type ReportSigner, signDocument, signReport } from './sign.js';
import type { ComplianceReport, ReportFormat } from './types.js';

export { buildReport, compareFigures, frameworkLabel, parseFrameworks, recomputedFigures } from './build.js';
export { EvidenceCollector, type EvidenceScope } from './evidence.js';
export { HTML_CSP, renderHtml } from './html.js';
export { renderMarkdown } from './markdown.js';
export { PeriodReader, periodBound } from './period.js';
export * from './sign.js';
export * from './types.js';

export const CONTENT_TYPES: Record<ReportFormat, string> = {
  html: 'text/html; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  json: 'application/json; charset=utf-8',
};

/** The signed report as a document: JSON (signature member), or HTML/Markdown (signature line). */
export function renderSigned(report: ComplianceReport, format: ReportFormat, signer: ReportSigner): string {
  const signed = signReport(report, signer);
  if (format === 'json') return `${JSON.stringify(signed, null, 2)}\n`;
  return signDocument(format === 'html' ? renderHtml(signed) : renderMarkdown(signed), signer);
}
