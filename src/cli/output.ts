/** How the CLI talks to people and scripts: colour only on a TTY, spinners only on a TTY, JSON on request. */
import chalk, { Chalk } from 'chalk';
import ora, { type Ora } from 'ora';

export const isTty = Boolean(process.stdout.isTTY);
const errTty = Boolean(process.stderr.isTTY);

/** Colours for stdout (none when piped or NO_COLOR). */
export const c = isTty && !process.env.NO_COLOR ? chalk : new Chalk({ level: 0 });
/** Colours for stderr. */
export const ce = errTty && !process.env.NO_COLOR ? chalk : new Chalk({ level: 0 });

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
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
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${c.bold(line(headers))}\n`);
  for (const r of cells) process.stdout.write(`${line(r)}\n`);
}

/**
 * A wait the person should see: a spinner on a terminal, plain progress lines on stderr otherwise
 * (so logs of CI jobs show what happened and when).
 */
export interface Progress {
  update(text: string): void;
  succeed(text: string): void;
  fail(text: string): void;
  stop(): void;
}

export function progress(text: string): Progress {
  if (errTty) {
    const spinner: Ora = ora({ text, stream: process.stderr }).start();
    return {
      update: (t) => {
        spinner.text = t;
      },
      succeed: (t) => spinner.succeed(t),
      fail: (t) => spinner.fail(t),
      stop: () => spinner.stop(),
    };
  }
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
