/**
 * The export formats of the audit log. jsonl is self-verifying: one JSON object per line, each with
 * exactly one member naming what it is — `export` (header), `key`, `checkpoint`, `record` — so the
 * CLI can check it offline. csv is for spreadsheets and carries no proof.
 */
import type { AuditRecord, Checkpoint, SigningPublicKey } from './audit.js';
import { canonicalJson } from './audit-chain.js';

export const EXPORT_FORMAT = 'hoop-audit-export';
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  exported_at: string;
  /** The window asked for (RFC 3339); the records extend to the nearest signed checkpoints around it. */
  since?: string;
  until?: string;
}

export type ExportLine =
  | { export: ExportHeader }
  | { key: SigningPublicKey }
  | { checkpoint: Checkpoint }
  | { record: AuditRecord };

/** One line of a jsonl export, newline included. Records are written canonically so they re-hash as stored. */
export function exportLine(line: ExportLine): string {
  return `${canonicalJson(line)}\n`;
}

export interface ParsedExport {
  header?: ExportHeader;
  keys: SigningPublicKey[];
  checkpoints: Checkpoint[];
  records: AuditRecord[];
}

/** Parse a jsonl export; throws with the line number on anything that is not one of the four line kinds. */
export function parseExport(text: string): ParsedExport {
  const parsed: ParsedExport = { keys: [], checkpoints: [], records: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw) continue;
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      throw new Error(`line ${i + 1}: not JSON`);
    }
    if (line.record) parsed.records.push(line.record as AuditRecord);
    else if (line.checkpoint) parsed.checkpoints.push(line.checkpoint as Checkpoint);
    else if (line.key) parsed.keys.push(line.key as SigningPublicKey);
    else if (line.export) {
      const header = line.export as ExportHeader;
      if (header.format !== EXPORT_FORMAT) throw new Error(`line ${i + 1}: not a ${EXPORT_FORMAT} file`);
      parsed.header = header;
    } else throw new Error(`line ${i + 1}: expected one of export, key, checkpoint, record`);
  }
  return parsed;
}

export const CSV_COLUMNS = [
  'seq',
  'time',
  'type',
  'session',
  'connection',
  'subject',
  'name',
  'groups',
  'source',
  'decision',
  'rule',
  'text',
  'rows',
  'sqlstate',
  'duration_ms',
  'data',
  'prev',
  'hash',
] as const;

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One CSV row (RFC 4180) of a record: the common fields in columns, the rest as JSON in `data`. */
export function csvRow(record: AuditRecord): string {
  const d = record.data as Record<string, unknown>;
  const cells: unknown[] = [
    record.seq,
    record.time,
    record.type,
    record.session,
    record.connection,
    record.identity?.subject,
    record.identity?.name,
    record.identity?.groups.join(' '),
    record.source,
    d.decision,
    d.rule,
    d.text,
    d.rows,
    d.sqlstate,
    d.duration_ms,
    canonicalJson(record.data),
    record.prev,
    record.hash,
  ];
  return `${cells.map(csvCell).join(',')}\r\n`;
}
