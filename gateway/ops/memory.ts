/**
 * Memory defaults, applied before anything else loads (bin/hoop-gateway), each unless the operator set
 * the same V8 option in node's arguments or NODE_OPTIONS (some V8 options are read only when the code
 * they govern first loads, so the shim applies these before the gateway's modules):
 *
 * - `--heap-growing-percent=33`: the gateway's live heap is small and steady (tens of MB) while it
 *   allocates fast, and some of every statement's short-lived objects are promoted. On a host with GBs
 *   of memory V8 lets the old generation grow to four times its live size before a full collection, so
 *   under load most of the resident memory was garbage waiting for one; collecting a small live heap
 *   is cheap (it is marked concurrently).
 */
import { setFlagsFromString } from 'node:v8';

const DEFAULTS = ['--heap-growing-percent=33'];

/** The V8 option a flag sets, spelled with dashes, without a value or a `no-` prefix. */
const optionOf = (flag: string) =>
  flag
    .replace(/=.*$/, '')
    .replaceAll('_', '-')
    .replace(/^--no-/, '--');

/** Apply the defaults the operator did not choose; returns the flags applied. */
export function applyMemoryDefaults(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): string[] {
  const chosen = new Set(
    [...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('--')).map(optionOf),
  );
  const applied = DEFAULTS.filter((flag) => !chosen.has(optionOf(flag)));
  for (const flag of applied) setFlagsFromString(flag);
  return applied;
}
