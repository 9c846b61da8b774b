/**
 * Every wait ends on Ctrl-C (SIGINT), SIGTERM and SIGHUP, in every output mode: spinners are cleared,
 * each registered cleanup runs (synchronously: close a tunnel so the gateway withdraws a held statement),
 * and the process exits at once with 128 + the signal's number (130, 143, 129), as shells report it.
 * A command that owns the terminal's signals for a while (connect's Ctrl-C to close, psql's child) takes
 * them over with `takeOverSignals` and hands them back when done.
 */
import { stopAllProgress } from './output.js';

const CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

const cleanups = new Set<() => void>();
let override: ((signal: NodeJS.Signals) => void) | undefined;

/** Run `cleanup` if the process is interrupted; returns a function that unregisters it. */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Handle signals yourself until the returned function is called. */
export function takeOverSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  override = handler;
  return () => {
    if (override === handler) override = undefined;
  };
}

export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return CODES[signal] ?? 1;
}

let installed = false;
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  for (const signal of Object.keys(CODES) as NodeJS.Signals[]) {
    process.on(signal, () => {
      if (override) {
        override(signal);
        return;
      }
      stopAllProgress();
      for (const cleanup of cleanups) {
        try {
          cleanup();
        } catch {
          // Exiting anyway: a cleanup that fails must not keep the process alive.
        }
      }
      process.stderr.write(`interrupted (${signal})\n`);
      process.exit(exitCodeForSignal(signal));
    });
  }
}
