/**
 * Memory defaults, applied before anything else loads (bin/hoop-gateway), each unless the operator set
 * a V8 option of the same concern in node's arguments or NODE_OPTIONS (some V8 options are read only
 * when the code they govern first loads, so the shim applies these before the gateway's modules):
 *
 * - `--heap-growing-percent=33`: the gateway's live heap is small and steady (tens of MB) while it
 *   allocates fast, and some of every statement's short-lived objects are promoted. On a host with GBs
 *   of memory V8 lets the old generation grow to four times its live size before a full collection, so
 *   under load most of the resident memory was garbage waiting for one; collecting a small live heap
 *   is cheap (it is marked concurrently).
 * - `--no-liftoff`: the SQL parser (WASM) is compiled once by the optimising compiler, on the main
 *   thread, function by function as first used. With the default baseline-then-optimise tiering the
 *   optimising compiles of the parser's large functions ran on worker threads, whose malloc arenas kept
 *   tens of MB after the compiles ended; the code that finally runs is the same.
 * - `--semi-space-growth-factor=1`: the young generation stays at its initial size instead of
 *   doubling up to 32 MB, which it did within seconds of start and kept resident.
 */
import { setFlagsFromString } from 'node:v8';

interface MemoryDefault {
  flag: string;
  /** V8 options (dashes, no value, no `no-` prefix) whose choice by the operator replaces this default. */
  concerns: string[];
}

const DEFAULTS: MemoryDefault[] = [
  { flag: '--heap-growing-percent=33', concerns: ['--heap-growing-percent'] },
  {
    flag: '--no-liftoff',
    concerns: ['--liftoff', '--liftoff-only', '--wasm-tier-up', '--wasm-dynamic-tiering'],
  },
  {
    flag: '--semi-space-growth-factor=1',
    concerns: ['--semi-space-growth-factor', '--max-semi-space-size', '--min-semi-space-size'],
  },
];

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
  const applied = DEFAULTS.filter((d) => !d.concerns.some((c) => chosen.has(c))).map((d) => d.flag);
  for (const flag of applied) setFlagsFromString(flag);
  return applied;
}
