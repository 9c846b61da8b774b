/**
 * How `hoopctl exec` prints results, one row at a time: nothing holds a whole result.
 *   table: aligned columns (widths from the first 1,000 rows, then streamed); bold header only where
 *          colour is on (output.ts's rules: TTY, NO_COLOR, FORCE_COLOR).
 *   json:  JSON Lines, one object per row, values typed from the column types (pg-types.ts).
 *   csv:   RFC 4180 with CRLF; each result set has its own header row, and result sets are separated by
 *          one empty line. NULL is an empty field, '' is "" — except in a one-column result, where a NULL
 *          row is written as "" so that no row is ever an empty line (use json when that difference matters).
 * Statements without a result set (INSERT, CREATE ...) print their command tag in table format only.
 */
import type { Writable } from 'node:stream';
import { type ColumnInfo, converters } from '../pg-types.js';

export type OutputFormat = 'table' | 'json' | 'csv';

export interface ResultWriter {
  columns(columns: ColumnInfo[]): void;
  /** false when the output is backed up: wait for 'drain'. */
  row(values: (string | null)[]): boolean;
  complete(tag: string): void;
  /** The statement is over (flush what a table held back). */
  end(): void;
}

const TABLE_SAMPLE = 1000;

export function createResultWriter(format: OutputFormat, out: Writable, colour: boolean): ResultWriter {
  if (format === 'json') return jsonWriter(out);
  if (format === 'csv') return csvWriter(out);
  return tableWriter(out, colour);
}

function jsonWriter(out: Writable): ResultWriter {
  let names: string[] = [];
  let convert: ((v: string | null) => unknown)[] = [];
  return {
    columns: (columns) => {
      names = columns.map((c) => c.name);
      convert = converters(columns);
    },
    row: (values) => {
      const object: Record<string, unknown> = {};
      names.forEach((name, i) => {
        object[name] = convert[i]!(values[i] ?? null);
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
  let resultSets = 0;
  let width = 0;
  return {
    columns: (columns) => {
      if (resultSets++ > 0) out.write('\r\n');
      width = columns.length;
      out.write(`${columns.map((c) => csvField(c.name)).join(',')}\r\n`);
    },
    row: (values) => {
      const line = width === 1 && values[0] === null ? '""' : values.map(csvField).join(',');
      return out.write(`${line}\r\n`);
    },
    complete: () => {},
    end: () => {},
  };
}

function tableWriter(out: Writable, colour: boolean): ResultWriter {
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
    out.write(`${colour ? `\x1b[1m${line(names)}\x1b[22m` : line(names)}\n`);
    out.write(`${widths.map((w) => '-'.repeat(w)).join('-+-')}\n`);
    for (const r of sample) out.write(`${line(r.map(show))}\n`);
    sample = [];
  };
  return {
    columns: (columns) => {
      names = columns.map((c) => c.name);
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
