/**
 * Backend (server → client) messages: encoders for what the gateway itself says to a client
 * (authentication, errors, notices, ready-for-query ...), and small decoders for the few server
 * messages a stage must read (ReadyForQuery, CommandComplete, ErrorResponse, RowDescription, DataRow).
 */
import { ProtocolViolation } from './frames.js';
import { BodyReader } from './frontend.js';

/** Build one typed message, filling the length at the end (postgres.js's writer idea). */
export class MessageWriter {
  private parts: Buffer[] = [];
  private size = 0;

  byte(v: number): this {
    return this.push(Buffer.from([v]));
  }
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  cstring(v: string): this {
    return this.push(Buffer.from(`${v}\0`, 'utf8'));
  }
  bytes(v: Buffer): this {
    return this.push(v);
  }
  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }
  /** The finished message of this type. */
  end(type: string): Buffer {
    const header = Buffer.allocUnsafe(5);
    header[0] = type.charCodeAt(0);
    header.writeInt32BE(this.size + 4, 1);
    return Buffer.concat([header, ...this.parts], this.size + 5);
  }
}

export const authenticationOk = (): Buffer => new MessageWriter().int32(0).end('R');
export const authenticationCleartextPassword = (): Buffer => new MessageWriter().int32(3).end('R');
export const authenticationSasl = (mechanisms: string[]): Buffer => {
  const w = new MessageWriter().int32(10);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).end('R');
};
export const authenticationSaslContinue = (data: string): Buffer =>
  new MessageWriter().int32(11).bytes(Buffer.from(data)).end('R');
export const authenticationSaslFinal = (data: string): Buffer =>
  new MessageWriter().int32(12).bytes(Buffer.from(data)).end('R');
export const parameterStatus = (name: string, value: string): Buffer =>
  new MessageWriter().cstring(name).cstring(value).end('S');
export const backendKeyData = (processId: number, secretKey: number): Buffer =>
  new MessageWriter().int32(processId).int32(secretKey).end('K');
export const readyForQuery = (status: TransactionStatus): Buffer =>
  new MessageWriter().byte(status.charCodeAt(0)).end('Z');
/** Answer a newer minor protocol version (or unknown _pq_ options) with what we support. */
export const negotiateProtocolVersion = (newestMinor: number, unsupportedOptions: string[]): Buffer => {
  const w = new MessageWriter().int32(newestMinor).int32(unsupportedOptions.length);
  for (const o of unsupportedOptions) w.cstring(o);
  return w.end('v');
};

export type TransactionStatus = 'I' | 'T' | 'E';

/** The fields of an ErrorResponse / NoticeResponse, by their one-letter codes. */
export interface NoticeFields {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /**
   * The 'R' (routine) field. The gateway's own refusals put a stable reason here
   * (hoop_policy_denied, hoop_approval_required, hoop_approval_rejected, hoop_approval_expired,
   * hoop_audit_unavailable, hoop_revoked) so programs such as `hoopctl exec` can tell them apart.
   */
  routine?: string;
  /** 'P': cursor position (1-based characters) of a syntax error in the statement text. */
  position?: number;
  /** 'F' and 'L': the source file and line that raised the error (as the database sends them). */
  file?: string;
  line?: number;
}

function encodeFields(type: 'E' | 'N', fields: NoticeFields): Buffer {
  const w = new MessageWriter();
  const field = (code: string, value: string | undefined) => {
    if (value !== undefined) w.byte(code.charCodeAt(0)).cstring(value);
  };
  field('S', fields.severity);
  field('V', fields.severity);
  field('C', fields.code);
  field('M', fields.message);
  field('D', fields.detail);
  field('H', fields.hint);
  field('P', fields.position === undefined ? undefined : String(fields.position));
  field('F', fields.file);
  field('L', fields.line === undefined ? undefined : String(fields.line));
  field('R', fields.routine);
  return w.byte(0).end(type);
}

export const errorResponse = (
  fields: Omit<NoticeFields, 'severity'> & { severity?: NoticeFields['severity'] },
): Buffer => encodeFields('E', { severity: 'ERROR', ...fields });
export const noticeResponse = (
  fields: Omit<NoticeFields, 'severity'> & { severity?: NoticeFields['severity'] },
): Buffer => encodeFields('N', { severity: 'NOTICE', ...fields });

/** Decode an ErrorResponse/NoticeResponse body into its fields keyed by code letter. */
export function decodeFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const r = new BodyReader(body);
  while (r.remaining > 0) {
    const code = r.byte();
    if (code === 0) break;
    out[String.fromCharCode(code)] = r.cstring();
  }
  return out;
}

export function decodeReadyForQuery(body: Buffer): TransactionStatus {
  return String.fromCharCode(body[0] ?? 73) as TransactionStatus;
}

/** CommandComplete's tag, e.g. "SELECT 5", "INSERT 0 1", and the row count in it when there is one. */
export function decodeCommandComplete(body: Buffer): { tag: string; rows: number | undefined } {
  const tag = body.toString('utf8', 0, Math.max(0, body.length - 1));
  const last = tag.slice(tag.lastIndexOf(' ') + 1);
  const rows = /^\d+$/.test(last) ? Number(last) : undefined;
  return { tag, rows };
}

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnNumber: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: number;
}

export function decodeRowDescription(body: Buffer): FieldDescription[] {
  const r = new BodyReader(body);
  const count = r.int16();
  const fields: FieldDescription[] = [];
  for (let i = 0; i < count; i++) {
    const name = r.cstring();
    const tableOid = r.uint32();
    const columnNumber = r.bytes(2).readInt16BE(0);
    const typeOid = r.uint32();
    const typeSize = r.bytes(2).readInt16BE(0);
    const typeModifier = r.int32();
    const format = r.bytes(2).readInt16BE(0);
    fields.push({ name, tableOid, columnNumber, typeOid, typeSize, typeModifier, format });
  }
  return fields;
}

/** A DataRow's column values as views into the frame (null for SQL NULL). */
export function decodeDataRow(body: Buffer): (Buffer | null)[] {
  const values: (Buffer | null)[] = new Array(dataRowColumns(body));
  let offset = 2;
  for (let i = 0; i < values.length; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) values[i] = null;
    else {
      values[i] = body.subarray(offset, offset + length);
      offset += length;
    }
  }
  return values;
}

/**
 * Check a DataRow's layout before anything reads values out of it (masking rewrites rows by these
 * lengths): its column count, and every column inside the body. Returns the column count.
 */
export function dataRowColumns(body: Buffer): number {
  if (body.length < 2) throw new ProtocolViolation('DataRow shorter than its column count');
  const count = body.readInt16BE(0);
  if (count < 0) throw new ProtocolViolation('DataRow with a negative column count');
  let offset = 2;
  for (let i = 0; i < count; i++) {
    if (offset + 4 > body.length) throw new ProtocolViolation('DataRow shorter than its columns');
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < -1) throw new ProtocolViolation(`DataRow column of length ${length}`);
    if (length > 0) offset += length;
    if (offset > body.length) throw new ProtocolViolation('DataRow column longer than the row');
  }
  if (offset !== body.length) throw new ProtocolViolation('DataRow longer than its columns');
  return count;
}

export function encodeDataRow(values: (Buffer | null)[]): Buffer {
  let size = 2;
  for (const v of values) size += 4 + (v ? v.length : 0);
  const out = Buffer.allocUnsafe(size + 5);
  out[0] = 0x44; // 'D'
  out.writeInt32BE(size + 4, 1);
  out.writeInt16BE(values.length, 5);
  let offset = 7;
  for (const v of values) {
    if (v === null) {
      out.writeInt32BE(-1, offset);
      offset += 4;
    } else {
      out.writeInt32BE(v.length, offset);
      v.copy(out, offset + 4);
      offset += 4 + v.length;
    }
  }
  return out;
}

/** BackendKeyData: process id and secret key (4 bytes in protocol 3.0). */
export interface BackendKey {
  processId: number;
  secretKey: Buffer;
}
