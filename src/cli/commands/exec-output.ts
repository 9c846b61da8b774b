/**
 * How `hoopctl exec` prints results, one row at a time: nothing holds a whole result.
 * table: aligned columns (widths from the first 1,000 rows, then streamed), json: one object per
 * row per line (JSON Lines), csv: RFC 4180 with a header row per result.
 */
import type { Writable } from 'node:stream';

export type OutputFormat = 'table' | 'json' | 'csv';

export interface ResultWriter {
  columns(names: string[]): void;
  /** false when the output is backed up: wait for 'drain'. */
  row(values: (string | null)[]): boolean;
  complete(tag: string): void;
  /** The statement is over (flush what a table held back). */
  end(): void;
}

const TABLE_SAMPLE = 1000;

export function createResultWriter(format: OutputFormat, out: Writable, tty: boolean): ResultWriter {
  if (format === 'json') return jsonWriter(out);
  if (format === 'csv') return csvWriter(out);
  return tableWriter(out, tty);
}

function jsonWriter(out: Writable): ResultWriter {
  let names: string[] = [];
  return {
    columns: (n) => {
      names = n;
    },
    row: (values) => {
      const object: Record<string, string | null> = {};
      names.forEach((name, i) => {
        object[name] = values[i] ?? null;
      });
      return out.write(`${JSON.stringify(object)}\n`);
    },
    complete: () => {},
    end: () => {},
  };
}

export function csvField(value: string | null): string {
  if (value === null) return '';
  return /[",\r\n]/.test(value) || value === '' ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvWriter(out: Writable): ResultWriter {
  return {
    columns: (names) => {
      out.write(`${names.map(csvField).join(',')}\r\n`);
    },
    row: (values) => out.write(`${values.map(csvField).join(',')}\r\n`),
    complete: () => {},
    end: () => {},
  };
}

function tableWriter(out: Writable, tty: boolean): ResultWriter {
  let names: string[] | undefined;
  let sample: (string | null)[][] = [];
  let widths: number[] | undefined;
  let rows = 0;
  let tag: string | undefined;
  const show = (v: string | null) => (v === null ? '' : v);
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths![i]!))
      .join(' | ')
      .trimEnd();
  const flushSample = () => {
    if (!names || widths) return;
    widths = names.map((n, i) => Math.max(n.length, ...sample.map((r) => show(r[i] ?? null).length)));
    out.write(`${tty ? `\x1b[1m${line(names)}\x1b[0m` : line(names)}\n`);
    out.write(`${widths.map((w) => '-'.repeat(w)).join('-+-')}\n`);
    for (const r of sample) out.write(`${line(r.map(show))}\n`);
    sample = [];
  };
  return {
    columns: (n) => {
      names = n;
      sample = [];
      widths = undefined;
      rows = 0;
    },
    row: (values) => {
      rows++;
      if (!widths) {
        sample.push(values);
        if (sample.length >= TABLE_SAMPLE) flushSample();
        return true;
      }
      return out.write(`${line(values.map(show))}\n`);
    },
    complete: (t) => {
      tag = t;
    },
    end: () => {
      if (names) {
        flushSample();
        out.write(`(${rows} row${rows === 1 ? '' : 's'})\n\n`);
      } else if (tag) {
        out.write(`${tag}\n`);
      }
      names = undefined;
      widths = undefined;
      tag = undefined;
    },
  };
}
