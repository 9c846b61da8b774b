/**
 * The export formats of the audit log. jsonl is self-verifying: one JSON object per line, each with
 * exactly one member naming what it is — `export` (header), `key`, `checkpoint`, `record` — so the
 * CLI can check it offline. csv is for spreadsheets and carries no proof.
 */
import type { AuditRecord, Checkpoint, SigningPublicKey, VerifyResult } from './audit.js';
import { chainOf } from './audit.js';
import { canonicalJson, LogVerifier, type VerifyOptions } from './audit-chain.js';

export const EXPORT_FORMAT = 'hoop-audit-export';
/** 2: records of several chains (each record names its `chain`), checkpoints with references. */
export const EXPORT_VERSION = 2;

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  exported_at: string;
  /** The window asked for (RFC 3339); the records extend to the nearest signed checkpoints around it. */
  since?: string;
  until?: string;
  /**
   * No window: every chain's whole retained log is in the file, so a chain a checkpoint references but the
   * file lacks (or holds shorter) is a failure. In a windowed export such references are not checked.
   */
  complete?: boolean;
  /** The chains the store held. */
  chains?: string[];
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

/** One line of an export, parsed; throws naming the line when it is none of the four kinds. */
function parseLine(raw: string, number: number): ExportLine {
  let line: Record<string, unknown>;
  try {
    line = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new Error(`line ${number}: not JSON`);
  }
  if (line.record || line.checkpoint || line.key) return line as ExportLine;
  if (line.export) {
    if ((line.export as ExportHeader).format !== EXPORT_FORMAT)
      throw new Error(`line ${number}: not a ${EXPORT_FORMAT} file`);
    return line as ExportLine;
  }
  throw new Error(`line ${number}: expected one of export, key, checkpoint, record`);
}

/**
 * Verify an export as it streams by (checkpoints come before records in a well-formed file; any that come
 * later are not used, which can only make verification fail). `complete` comes from the file's header.
 */
export async function verifyExportLines(
  lines: AsyncIterable<string> | Iterable<string>,
  options: Pick<VerifyOptions, 'trustedKeys' | 'witness'>,
): Promise<{ result: VerifyResult; header?: ExportHeader; keysInFile: SigningPublicKey[] }> {
  let header: ExportHeader | undefined;
  const checkpoints: Checkpoint[] = [];
  const keysInFile: SigningPublicKey[] = [];
  let verifier: LogVerifier | undefined;
  const start = () =>
    new LogVerifier(checkpoints, { ...options, complete: header?.complete ?? false, maxUnsealedMs: 0 });
  let number = 0;
  for await (const text of lines) {
    number++;
    const raw = text.trim();
    if (!raw) continue;
    const line = parseLine(raw, number);
    if ('export' in line) header = line.export;
    else if (!header)
      throw new Error(`line ${number}: not a hoop audit export (no header line first); use --format jsonl`);
    else if ('key' in line) keysInFile.push(line.key);
    else if ('checkpoint' in line) checkpoints.push(line.checkpoint);
    else {
      verifier ??= start();
      if (verifier.add(line.record)) break;
    }
  }
  if (!header) throw new Error('not a hoop audit export (no header line); use --format jsonl');
  return { result: (verifier ?? start()).finish(), header, keysInFile };
}

/** The checkpoints in a witness file (a file sink's output, or an export): its `{"checkpoint":…}` lines. */
export async function readWitness(lines: AsyncIterable<string> | Iterable<string>): Promise<Checkpoint[]> {
  const found: Checkpoint[] = [];
  for await (const text of lines) {
    const raw = text.trim();
    if (!raw.startsWith('{"checkpoint":')) continue;
    try {
      found.push((JSON.parse(raw) as { checkpoint: Checkpoint }).checkpoint);
    } catch {
      // a torn last line of a file being written: ignore it
    }
  }
  return found;
}

export const CSV_COLUMNS = [
  'chain',
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

/** One CSV row (RFC 4180) of a record: the common fields in columns (chain first), the rest as JSON in `data`. */
export function csvRow(record: AuditRecord): string {
  const d = record.data as Record<string, unknown>;
  const cells: unknown[] = [
    chainOf(record),
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
