/**
 * Scrape a Prometheus endpoint and read it with a parser of the text exposition format 0.0.4 (line by line:
 * HELP and TYPE comments, samples with escaped label values, +Inf/NaN, optional timestamps), and lint the
 * exposition with Prometheus's own `promtool check metrics` where it is installed (Debian: prometheus).
 *
 * Written here because the one parser on npm (parse-prometheus-text-format 1.1.1) drops the counts of
 * histograms that have labels.
 */
import { spawnSync } from 'node:child_process';

export interface Sample {
  /** The series name as written (`x_bucket`, `x_count`, …). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help?: string;
  type: string;
  samples: Sample[];
}

export interface Scrape {
  text: string;
  families: Map<string, Family>;
  /** Sum of a counter's or gauge's samples whose labels include `labels`. */
  value(name: string, labels?: Record<string, string>): number;
  /** Sum of a histogram's `_count` samples whose labels include `labels`. */
  count(name: string, labels?: Record<string, string>): number;
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'];

/** Parse `{a="x",b="y\"z"}` from `text` at `at` (just past the `{`); returns the labels and the index past `}`. */
function parseLabels(text: string, at: number, line: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  let i = at;
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return [labels, i + 1];
    const eq = text.indexOf('=', i);
    if (eq < 0 || text[eq + 1] !== '"') throw new Error(`bad label in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    let value = '';
    i = eq + 2;
    while (text[i] !== '"') {
      if (i >= text.length) throw new Error(`unterminated label value in: ${line}`);
      if (text[i] === '\\') {
        const next = text[i + 1];
        value += next === 'n' ? '\n' : next;
        i += 2;
      } else value += text[i++];
    }
    labels[name] = value;
    i++;
  }
}

/** Go's ParseFloat, which Prometheus uses: NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Number.POSITIVE_INFINITY;
  if (special === '-inf') return Number.NEGATIVE_INFINITY;
  if (special === 'nan') return Number.NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad sample value "${text}" in: ${line}`);
  return value;
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    const known = families.get(name);
    if (known) return known;
    const created: Family = { name, type: 'untyped', samples: [] };
    families.set(name, created);
    return created;
  };
  /** A sample belongs to the family declared by TYPE whose name it extends with a histogram suffix. */
  const familyOf = (series: string) => {
    for (const suffix of HISTOGRAM_SUFFIXES) {
      const base = series.slice(0, -suffix.length);
      if (series.endsWith(suffix) && ['histogram', 'summary'].includes(families.get(base)?.type ?? ''))
        return base;
    }
    return series;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const [, keyword, name, ...rest] = line.split(' ');
      if (keyword === 'HELP') family(name!).help = rest.join(' ');
      else if (keyword === 'TYPE') family(name!).type = rest[0]!;
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`bad sample line: ${line}`);
    const name = line.slice(0, nameEnd);
    let labels: Record<string, string> = {};
    let rest = nameEnd;
    if (line[nameEnd] === '{') [labels, rest] = parseLabels(line, nameEnd + 1, line);
    const [valueText] = line.slice(rest).trim().split(/\s+/);
    family(familyOf(name)).samples.push({ name, labels, value: parseValue(valueText ?? '', line) });
  }
  return families;
}

const includes = (sample: Sample, labels: Record<string, string>) =>
  Object.entries(labels).every(([k, v]) => sample.labels[k] === v);

export function parseScrape(text: string): Scrape {
  const families = parseExposition(text);
  const series = (name: string, sampleName: string, labels: Record<string, string>) => {
    const family = families.get(name);
    if (!family) throw new Error(`no metric ${name} in the scrape`);
    return family.samples.filter((s) => s.name === sampleName && includes(s, labels));
  };
  const sum = (samples: Sample[]) => samples.reduce((total, s) => total + s.value, 0);
  return {
    text,
    families,
    value: (name, labels = {}) => sum(series(name, name, labels)),
    count: (name, labels = {}) => sum(series(name, `${name}_count`, labels)),
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return parseScrape(await response.text());
}

/** promtool's verdict on an exposition: undefined when promtool is not installed. */
export function promtoolCheck(text: string): { ok: boolean; output: string } | undefined {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (run.error) return undefined;
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
}
