/** Durations as users type them: `90s`, `30m`, `24h`, `7d`, `2w`, or a bare number of milliseconds. */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(text);
  if (!match) throw new Error(`not a duration: "${text}" (use e.g. 90s, 30m, 24h, 7d)`);
  const value = Number(match[1]);
  return Math.round(value * UNIT_MS[match[2] ?? 'ms']!);
}

/** `--since`/`--until`: a duration back from now, or an RFC 3339 time. Returns epoch milliseconds. */
export function parseTimeBound(text: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d|w)$/.test(text.trim())) return now - parseDuration(text);
  const t = Date.parse(text);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new Error(`not a time: "${text}" (use a duration back from now such as 24h, or RFC 3339)`);
  }
  return t;
}

export function formatDuration(ms: number): string {
  if (ms % UNIT_MS.d! === 0 && ms >= UNIT_MS.d!) return `${ms / UNIT_MS.d!}d`;
  if (ms % UNIT_MS.h! === 0 && ms >= UNIT_MS.h!) return `${ms / UNIT_MS.h!}h`;
  if (ms % UNIT_MS.m! === 0 && ms >= UNIT_MS.m!) return `${ms / UNIT_MS.m!}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
