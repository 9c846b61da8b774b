/**
 * How the gateway's JavaScript heap grows. Its live heap is small and steady (tens of MB: sessions,
 * caches, the parser's glue) while it allocates fast (every statement's messages and records), and
 * some of that short-lived garbage is promoted to the old generation. On a host with a few GB of
 * memory V8 lets the old generation grow to up to four times its live size before a full collection,
 * so under load most of the gateway's resident memory is garbage waiting for one. A full collection
 * of a small live heap is cheap (marked concurrently): let the old generation grow by a third.
 */
import { setFlagsFromString } from 'node:v8';

const GROWTH_FLAG = '--heap-growing-percent';
const DEFAULT_GROWTH_PERCENT = 33;

/** Set the growth unless the operator chose one (NODE_OPTIONS or node's own arguments). */
export function boundHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): boolean {
  const given = [...execArgv, nodeOptions].join(' ').replaceAll('_', '-');
  if (given.includes(GROWTH_FLAG)) return false;
  setFlagsFromString(`${GROWTH_FLAG}=${DEFAULT_GROWTH_PERCENT}`);
  return true;
}
