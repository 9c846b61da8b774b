/**
 * How the CLI talks to people and scripts: colour only where it will be seen as colour, spinners only on
 * a real, sized terminal, JSON on request. No dependencies: this module is on every command's start path.
 *
 * Colour: FORCE_COLOR (any value but 0/false) turns it on, FORCE_COLOR=0 or a non-empty NO_COLOR turns it
 * off, otherwise it is on for a TTY whose TERM is not "dumb" — decided per stream (stdout, stderr).
 */
import type { WriteStream } from 'node:tty';

type Paint = (text: string) => string;
export interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
  magenta: Paint;
}

export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR) return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

export function palette(on: boolean): Palette {
  const sgr =
    (open: number, close: number): Paint =>
    (text) =>
      on ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    cyan: sgr(36, 39),
    magenta: sgr(35, 39),
  };
}

export const isTty = Boolean(process.stdout.isTTY);
/** Colours for stdout. */
export const c = palette(colourWanted(process.stdout));
/** Colours for stderr. */
export const ce = palette(colourWanted(process.stderr));

/**
 * Print JSON. `selection` is the value of a `--json [fields]` option: `true` (or absent) prints the whole
 * value; "a,b.c" keeps only those fields (dotted paths reach inside), as `gh --json` does.
 */
export function printJson(value: unknown, selection?: boolean | string): void {
  const fields = typeof selection === 'string' ? parseFields(selection) : undefined;
  const shown = fields ? selectFields(value, fields) : value;
  process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
}

/** `--json [fields]`: the option every command that prints data has. */
export const JSON_OPTION_FLAGS = '--json [fields]';
export function jsonOptionHelp(shape: string): string {
  return `print JSON: ${shape}; --json a,b keeps only those fields (dotted paths)`;
}

function parseFields(text: string): string[] {
  return text
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
}

/**
 * Keep `fields` of a listing's items: of each element of an array; of an object that has one of the
 * fields itself; otherwise of the elements of each array the object holds (`{ sessions: [...] }`).
 */
export function selectFields(value: unknown, fields: string[]): unknown {
  if (Array.isArray(value)) return value.map((item) => pick(item, fields));
  if (!value || typeof value !== 'object') return value;
  const object = value as Record<string, unknown>;
  if (fields.some((f) => f.split('.')[0]! in object)) return pick(object, fields);
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(object)) {
    if (Array.isArray(inner)) out[key] = inner.map((item) => pick(item, fields));
  }
  return out;
}

function pick(item: unknown, fields: string[]): unknown {
  if (!item || typeof item !== 'object') return item;
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const path = field.split('.');
    let from: unknown = item;
    for (const key of path)
      from = from && typeof from === 'object' ? (from as Record<string, unknown>)[key] : undefined;
    if (from === undefined) continue;
    let into = out;
    for (const key of path.slice(0, -1)) {
      into[key] ??= {};
      into = into[key] as Record<string, unknown>;
    }
    into[path.at(-1)!] = from;
  }
  return out;
}

export function warn(message: string): void {
  process.stderr.write(`${ce.yellow('warning:')} ${message}\n`);
}

export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A plain text table: header row, then rows; columns padded to their widest cell. */
export function printTable(headers: string[], rows: (string | number | null | undefined)[][]): void {
  const cells = rows.map((r) => r.map((v) => (v === null || v === undefined ? '' : String(v))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => visibleLength(r[i] ?? ''))));
  const line = (r: string[]) =>
    r
      .map((v, i) => (i === r.length - 1 ? v : v + ' '.repeat(Math.max(0, widths[i]! - visibleLength(v)))))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${c.bold(line(headers))}\n`);
  for (const r of cells) process.stdout.write(`${line(r)}\n`);
}

/**
 * Text from the database or another person (a statement, a bound value, a reason, a recorded row)
 * made safe to print on a terminal: control characters other than newline and tab, and the Unicode
 * direction overrides, become visible escapes (`\x1b`, `\u202e`), so a statement cannot return the
 * cursor or erase a line to show its reviewer something other than what would run.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => {
    const code = ch.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const ANSI = /\x1b\[[0-9;]*m/g;
function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}

/**
 * A wait the person should see: a spinner on a real terminal, plain progress lines on stderr otherwise
 * (so logs of CI jobs show what happened and when). Every spinner ends when the process is interrupted.
 */
export interface Progress {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

/**
 * Spin only on a terminal that has a size: a pseudo-terminal of 0×0 (CI runners, `script`) reports
 * isTTY but cannot show a one-line spinner, and redrawing into it is how a wait once printed 377 MB.
 */
export function canSpin(stream: Pick<WriteStream, 'isTTY' | 'columns' | 'rows'> = process.stderr): boolean {
  return (
    Boolean(stream.isTTY) &&
    (stream.columns ?? 0) >= 20 &&
    (stream.rows ?? 0) > 0 &&
    process.env.TERM !== 'dumb'
  );
}

const active = new Set<() => void>();
/** Clear every spinner now (an interrupt is ending the process). */
export function stopAllProgress(): void {
  for (const stop of [...active]) stop();
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function progress(text: string): Progress {
  return canSpin() ? spinner(text) : lines(text);
}

function lines(text: string): Progress {
  info(text);
  let last = text;
  return {
    update: (t) => {
      if (t !== last) info(t);
      last = t;
    },
    succeed: (t) => info(t),
    fail: (t) => info(t),
    stop: () => {},
  };
}

function spinner(initial: string): Progress {
  const out = process.stderr;
  // Lines after the first are printed once; the spinner redraws one line, cut to the terminal's width.
  const [first, ...rest] = initial.split('\n');
  for (const line of rest) out.write(`${line}\n`);
  let text = first ?? '';
  let frame = 0;
  const draw = () => {
    const width = Math.max(10, (out.columns ?? 80) - 3);
    const shown = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    out.write(`\r\x1b[2K${ce.cyan(FRAMES[frame++ % FRAMES.length]!)} ${shown}`);
  };
  const clear = () => out.write('\r\x1b[2K');
  const timer = setInterval(draw, 120);
  timer.unref();
  draw();
  const stop = () => {
    if (!active.delete(stop)) return;
    clearInterval(timer);
    clear();
  };
  active.add(stop);
  return {
    update: (t) => {
      text = t.split('\n')[0] ?? '';
    },
    succeed: (t) => {
      stop();
      out.write(`${ce.green('✔')} ${t}\n`);
    },
    fail: (t) => {
      stop();
      out.write(`${ce.red('✖')} ${t}\n`);
    },
    stop,
  };
}
