/**
 * One forwarded statement's result as the relay follows it: rows and bytes counted, the first rows
 * kept for the recording (bounded), the columns, and the masking filter that looks inside when a rule
 * needs it. Pure bookkeeping over frame bodies.
 */
import type { ResultFilter, StatementOutcome } from '../contracts/gate.js';
import { decodeDataRow, type FieldDescription } from '../pgwire/backend.js';

export interface Running {
  id: string;
  startedAt: number;
  rows: number;
  bytes: number;
  columns?: string[];
  recorded?: (string | null)[][];
  recordedBytes: number;
  truncated: boolean;
  /** Looks inside the results (masking); absent for the common case of plain pass-through. */
  filter?: ResultFilter;
  /** Result column formats: from RowDescription (simple) or Bind's result format codes (extended). */
  formats?: readonly number[];
  /** `formats` expanded to one code per column, for the filter (computed at the first row). */
  rowFormats?: number[];
  /** The columns were learnt from a Describe (extended protocol). */
  described?: boolean;
}

export interface RecordLimits {
  recordRows: number;
  recordBytes: number;
}

export function startRunning(id: string, filter?: ResultFilter): Running {
  return { id, startedAt: Date.now(), rows: 0, bytes: 0, recordedBytes: 0, truncated: false, filter };
}

export function recordingFull(running: Running, limits: RecordLimits): boolean {
  return running.recordedBytes >= limits.recordBytes || (running.recorded?.length ?? 0) >= limits.recordRows;
}

/** Count one DataRow (`body` is what the client receives: the masked row when there is one). */
export function countRow(running: Running, body: Buffer, wireBytes: number, limits: RecordLimits): void {
  running.rows++;
  running.bytes += wireBytes;
  if (recordingFull(running, limits)) {
    if (limits.recordRows > 0) running.truncated = true;
    return;
  }
  const values = decodeDataRow(body).map((v, i) =>
    v === null ? null : formatOf(running.formats, i) === 1 ? `\\x${v.toString('hex')}` : v.toString('utf8'),
  );
  running.recorded ??= [];
  running.recorded.push(values);
  running.recordedBytes += body.length;
}

/** Columns learnt from a RowDescription or a Describe: for the record and for the filter. */
export function setColumns(running: Running, fields: FieldDescription[]): void {
  running.columns = fields.map((f) => f.name);
  running.filter?.columns?.(fields);
}

export function outcomeOf(running: Running, outcome: Partial<StatementOutcome>): StatementOutcome {
  return {
    rows: running.rows,
    bytes: running.bytes,
    durationMs: Date.now() - running.startedAt,
    result:
      running.columns || running.recorded
        ? { columns: running.columns ?? [], rows: running.recorded ?? [], truncated: running.truncated }
        : undefined,
    ...outcome,
  };
}

/** Format of column i: Bind's codes mean none = all text, one = all that, else one per column. */
export function formatOf(formats: readonly number[] | undefined, i: number): number {
  if (!formats || formats.length === 0) return 0;
  return formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
}

export function expandFormats(formats: readonly number[] | undefined, count: number): number[] {
  return Array.from({ length: count }, (_, i) => formatOf(formats, i));
}
