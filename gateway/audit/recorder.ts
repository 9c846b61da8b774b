/**
 * What a `statement.result` record keeps of a result: the column names and the first rows, within
 * recording.max_rows and max_bytes, fed as rows stream by. Pure; never holds more than the bound.
 * Give it the values the client receives (masked), never the clear ones.
 */
import type { RecordedResult } from '../../src/shared/audit.js';

export interface RecordingLimits {
  maxRows: number;
  maxBytes: number;
}

export class ResultRecorder {
  private names: string[] = [];
  private readonly kept: (string | null)[][] = [];
  private keptBytes = 0;
  private full = false;
  /** Every row seen, kept or not. */
  rowCount = 0;
  /** UTF-8 bytes of every value seen, kept or not. */
  byteCount = 0;

  constructor(private readonly limits: RecordingLimits) {}

  columns(names: readonly string[]): void {
    this.names = [...names];
  }

  row(values: readonly (string | null)[]): void {
    let bytes = 0;
    for (const v of values) if (v !== null) bytes += Buffer.byteLength(v, 'utf8');
    this.rowCount++;
    this.byteCount += bytes;
    if (this.full) return;
    // Keep a prefix only: once one row does not fit, later (smaller) rows are not kept either.
    if (this.kept.length >= this.limits.maxRows || this.keptBytes + bytes > this.limits.maxBytes) {
      this.full = true;
      return;
    }
    this.kept.push([...values]);
    this.keptBytes += bytes;
  }

  result(): RecordedResult {
    return { columns: [...this.names], rows: this.kept.map((r) => [...r]), truncated: this.full };
  }
}
