/** GET /v1/report's query parameters: the CLI's flags, with clear 400s. */
import { describe, expect, it } from 'vitest';
import { parseReportQuery } from '../../../gateway/report/routes.js';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const parse = (q: string) => parseReportQuery(new URLSearchParams(q), NOW);

describe('report query', () => {
  it('defaults: every framework, the last 90 days, JSON', () => {
    expect(parse('')).toEqual({
      frameworks: ['soc2', 'pci-dss-4', 'nist-800-53'],
      from: '2026-09-02T12:00:00.000000Z',
      to: '2026-12-01T12:00:00.000000Z',
      connection: undefined,
      format: 'json',
    });
  });

  it('frameworks repeated or comma-separated, in the catalogue order; durations and RFC 3339 times', () => {
    expect(
      parse('framework=nist-800-53&framework=soc2&since=7d&format=html&connection=prod-db'),
    ).toMatchObject({
      frameworks: ['soc2', 'nist-800-53'],
      from: '2026-11-24T12:00:00.000000Z',
      connection: 'prod-db',
      format: 'html',
    });
    expect(
      parse('framework=pci-dss-4,soc2&since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z'),
    ).toMatchObject({
      frameworks: ['soc2', 'pci-dss-4'],
      from: '2026-11-01T00:00:00.000000Z',
      to: '2026-11-02T00:00:00.000000Z',
    });
  });

  it('refuses what it cannot honour, naming the parameter', () => {
    expect(() => parse('framework=hipaa')).toThrow(/framework: unknown framework "hipaa"/);
    expect(() => parse('format=pdf')).toThrow(/format: expected html, md, json/);
    expect(() => parse('since=yesterday')).toThrow(/since: not a time/);
    expect(() => parse('since=2026-12-02T00:00:00Z')).toThrow(/since must be before until/);
  });
});
