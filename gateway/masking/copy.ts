/**
 * COPY ... TO STDOUT rows, for masking them: the statement's options (from the parse tree) and a
 * reader/writer of the text and csv row formats as PostgreSQL writes them. Pure.
 *
 * text: fields separated by the delimiter, a row ends with a newline; a field equal to the null
 * string is NULL; backslash escapes (\b \f \n \r \t \v \\, \<delimiter>, octal \NNN and \xHH).
 * csv: fields separated by the delimiter; a quoted field may hold delimiters, quotes (written as
 * escape + quote) and newlines; an unquoted field equal to the null string is NULL.
 */
import { isObject } from '../sql/walk.js';

export interface CopyFormat {
  format: 'text' | 'csv' | 'binary';
  delimiter: string;
  quote: string;
  escape: string;
  null: string;
  header: boolean;
}

/**
 * The format of `COPY ... TO` from the CopyStmt's `options` (DefElem list). Undefined when an option
 * makes the rows impossible to follow safely (a non-UTF-8 encoding, multi-byte delimiters).
 */
export function copyFormatOf(options: unknown): CopyFormat | undefined {
  const given = new Map<string, unknown>();
  for (const option of Array.isArray(options) ? options : []) {
    const def = isObject(option) && isObject(option.DefElem) ? option.DefElem : undefined;
    if (!def || typeof def.defname !== 'string') return undefined;
    given.set(def.defname.toLowerCase(), def.arg);
  }
  const format = given.has('format') ? argString(given.get('format'))?.toLowerCase() : 'text';
  if (format !== 'text' && format !== 'csv' && format !== 'binary') return undefined;
  const csv = format === 'csv';
  const quote = given.has('quote') ? argString(given.get('quote')) : '"';
  const result: CopyFormat = {
    format,
    delimiter: given.has('delimiter') ? (argString(given.get('delimiter')) ?? '') : csv ? ',' : '\t',
    quote: quote ?? '',
    escape: given.has('escape') ? (argString(given.get('escape')) ?? '') : (quote ?? ''),
    null: given.has('null') ? (argString(given.get('null')) ?? '\0') : csv ? '' : '\\N',
    header: given.has('header') ? argBoolean(given.get('header')) : false,
  };
  const encoding = given.has('encoding') ? argString(given.get('encoding')) : undefined;
  if (encoding !== undefined && !/^utf-?8$/i.test(encoding)) return undefined;
  if (format === 'binary') return result;
  // PostgreSQL requires single-byte delimiter, quote and escape characters.
  if (!singleByte(result.delimiter)) return undefined;
  if (csv && (!singleByte(result.quote) || !singleByte(result.escape))) return undefined;
  if (result.null.includes('\0')) return undefined;
  return result;
}

function argString(arg: unknown): string | undefined {
  if (!isObject(arg)) return undefined;
  if (isObject(arg.String)) return String(arg.String.sval ?? '');
  if (isObject(arg.Integer)) return String(arg.Integer.ival ?? 0);
  if (isObject(arg.Boolean)) return arg.Boolean.boolval ? 'true' : 'false';
  return undefined;
}

function argBoolean(arg: unknown): boolean {
  if (arg === undefined) return true; // `HEADER` alone
  const value = (argString(arg) ?? 'true').toLowerCase();
  return !['false', 'off', '0', 'f', 'no', 'n', 'of'].includes(value);
}

function singleByte(s: string): boolean {
  return s.length === 1 && s.charCodeAt(0) < 0x80;
}

/** One row's fields: a string, or null for NULL. */
export type CopyRow = (string | null)[];

/**
 * Split COPY data (one or more whole rows, as PostgreSQL sends them) into rows. Total: any input gives
 * rows; a last row without its newline is still a row. `newline` is the line ending the data used.
 */
export function parseCopyRows(
  data: string,
  f: CopyFormat,
): { rows: CopyRow[]; raws: string[][]; newline: string } {
  const rows: CopyRow[] = [];
  const raws: string[][] = [];
  let newline = '\n';
  let i = 0;
  while (i < data.length) {
    const parsed = f.format === 'csv' ? readCsvRow(data, i, f) : readTextRow(data, i, f);
    rows.push(parsed.row);
    raws.push(parsed.raw);
    if (parsed.newline) newline = parsed.newline;
    i = parsed.next;
  }
  return { rows, raws, newline };
}

interface RowRead {
  row: CopyRow;
  /** Each field exactly as written (joined with the delimiter, they give the row back). */
  raw: string[];
  next: number;
  newline?: string;
}

const TEXT_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function readTextRow(data: string, start: number, f: CopyFormat): RowRead {
  const row: CopyRow = [];
  const raws: string[] = [];
  let raw = '';
  let value = '';
  let i = start;
  const endField = () => {
    row.push(raw === f.null ? null : value);
    raws.push(raw);
    raw = '';
    value = '';
  };
  while (i < data.length) {
    const c = data[i]!;
    if (c === '\n' || (c === '\r' && data[i + 1] === '\n')) {
      endField();
      const newline = c === '\r' ? '\r\n' : '\n';
      return { row, raw: raws, next: i + newline.length, newline };
    }
    if (c === f.delimiter) {
      endField();
      i++;
      continue;
    }
    if (c === '\\' && i + 1 < data.length) {
      const n = data[i + 1]!;
      if (/[0-7]/.test(n)) {
        const m = /^[0-7]{1,3}/.exec(data.slice(i + 1, i + 4))![0];
        value += String.fromCharCode(Number.parseInt(m, 8) & 0xff);
        raw += c + m;
        i += 1 + m.length;
        continue;
      }
      if (n === 'x' && /^[0-9a-fA-F]/.test(data[i + 2] ?? '')) {
        const m = /^[0-9a-fA-F]{1,2}/.exec(data.slice(i + 2, i + 4))![0];
        value += String.fromCharCode(Number.parseInt(m, 16));
        raw += `\\x${m}`;
        i += 2 + m.length;
        continue;
      }
      value += TEXT_ESCAPES[n] ?? n;
      raw += c + n;
      i += 2;
      continue;
    }
    value += c;
    raw += c;
    i++;
  }
  endField();
  return { row, raw: raws, next: i };
}

function readCsvRow(data: string, start: number, f: CopyFormat): RowRead {
  const row: CopyRow = [];
  const raws: string[] = [];
  let i = start;
  for (;;) {
    // One field, starting at i.
    const fieldStart = i;
    let value = '';
    let quoted = false;
    let inQuotes = false;
    while (i < data.length) {
      const c = data[i]!;
      if (inQuotes) {
        // Escape + quote (or escape + escape) is that character; with escape == quote, a doubled quote.
        if (c === f.escape && i + 1 < data.length && (data[i + 1] === f.quote || data[i + 1] === f.escape)) {
          value += data[i + 1];
          i += 2;
          continue;
        }
        if (c === f.quote) {
          inQuotes = false;
          i++;
          continue;
        }
        value += c;
        i++;
        continue;
      }
      if (c === f.quote) {
        inQuotes = true;
        quoted = true;
        i++;
        continue;
      }
      if (c === f.delimiter || c === '\n' || (c === '\r' && data[i + 1] === '\n')) break;
      value += c;
      i++;
    }
    row.push(!quoted && value === f.null ? null : value);
    raws.push(data.slice(fieldStart, i));
    if (i >= data.length) return { row, raw: raws, next: i };
    const c = data[i]!;
    if (c === f.delimiter) {
      i++;
      continue;
    }
    const newline = c === '\r' ? '\r\n' : '\n';
    return { row, raw: raws, next: i + newline.length, newline };
  }
}

/** Write one row (with its newline) as PostgreSQL would. */
export function formatCopyRow(row: CopyRow, f: CopyFormat, newline = '\n'): string {
  return row.map((v) => formatCopyField(v, f)).join(f.delimiter) + newline;
}

/** One field as PostgreSQL would write it. */
export function formatCopyField(value: string | null, f: CopyFormat): string {
  if (value === null) return f.null;
  return f.format === 'csv' ? csvField(value, f) : textField(value, f);
}

function textField(value: string, f: CopyFormat): string {
  let out = '';
  for (const c of value) {
    switch (c) {
      case '\\':
        out += '\\\\';
        break;
      case '\b':
        out += '\\b';
        break;
      case '\f':
        out += '\\f';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\v':
        out += '\\v';
        break;
      default:
        out += c === f.delimiter ? `\\${c}` : c;
    }
  }
  return out;
}

function csvField(value: string, f: CopyFormat): string {
  const needsQuotes =
    value === f.null ||
    value.includes(f.delimiter) ||
    value.includes(f.quote) ||
    value.includes('\n') ||
    value.includes('\r') ||
    (value.length > 0 && value.startsWith('\\.'));
  if (!needsQuotes) return value;
  let out = f.quote;
  for (const c of value) {
    if (c === f.quote || c === f.escape) out += f.escape;
    out += c;
  }
  return out + f.quote;
}
