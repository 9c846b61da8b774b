/**
 * Frontend (client → server) messages: the startup-phase packets and the typed messages whose
 * content a stage needs (Query, Parse, Bind, Execute, Describe, Close, FunctionCall).
 * Pure decoding of a frame's body; everything else is forwarded as the same bytes.
 */
import { ProtocolViolation } from './frames.js';

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export type StartupPacket =
  | { kind: 'ssl-request' }
  | { kind: 'gssenc-request' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | {
      kind: 'startup';
      major: number;
      minor: number;
      parameters: Record<string, string>;
      protocolOptions: string[];
    };

/** Decode an untyped startup-phase packet (the body after its length). */
export function parseStartupPacket(body: Buffer): StartupPacket {
  if (body.length < 4) throw new ProtocolViolation('startup packet too short');
  const code = body.readInt32BE(0);
  if (code === SSL_REQUEST_CODE) return { kind: 'ssl-request' };
  if (code === GSSENC_REQUEST_CODE) return { kind: 'gssenc-request' };
  if (code === CANCEL_REQUEST_CODE) {
    if (body.length < 12) throw new ProtocolViolation('cancel request too short');
    // Protocol 3.2 allows a longer secret key; keep whatever length came.
    return { kind: 'cancel', processId: body.readInt32BE(4), secretKey: Buffer.from(body.subarray(8)) };
  }
  const major = code >> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolViolation(
      `unsupported frontend protocol ${major}.${minor}: the gateway speaks 3.0`,
      '0A000',
    );
  }
  const parameters: Record<string, string> = {};
  const protocolOptions: string[] = [];
  const reader = new BodyReader(body, 4);
  for (;;) {
    const name = reader.cstring();
    if (name === '') break;
    const value = reader.cstring();
    if (name.startsWith('_pq_.')) protocolOptions.push(name);
    else parameters[name] = value;
  }
  return { kind: 'startup', major, minor, parameters, protocolOptions };
}

export interface QueryMessage {
  sql: string;
}
export interface ParseMessage {
  statement: string;
  sql: string;
  parameterTypes: number[];
}
export interface BindMessage {
  portal: string;
  statement: string;
  parameterFormats: number[];
  /** Raw parameter values; null for SQL NULL. Views into the frame. */
  parameters: (Buffer | null)[];
  resultFormats: number[];
}
export interface ExecuteMessage {
  portal: string;
  maxRows: number;
}
export interface DescribeOrClose {
  /** 'S' statement or 'P' portal. */
  target: 'S' | 'P';
  name: string;
}

export function parseQuery(body: Buffer): QueryMessage {
  return { sql: new BodyReader(body).cstring() };
}

export function parseParse(body: Buffer): ParseMessage {
  const r = new BodyReader(body);
  const statement = r.cstring();
  const sql = r.cstring();
  const count = r.int16();
  const parameterTypes: number[] = [];
  for (let i = 0; i < count; i++) parameterTypes.push(r.uint32());
  return { statement, sql, parameterTypes };
}

export function parseBind(body: Buffer): BindMessage {
  const r = new BodyReader(body);
  const portal = r.cstring();
  const statement = r.cstring();
  const parameterFormats = r.int16Array();
  const count = r.int16();
  const parameters: (Buffer | null)[] = [];
  for (let i = 0; i < count; i++) {
    const length = r.int32();
    parameters.push(length < 0 ? null : r.bytes(length));
  }
  const resultFormats = r.int16Array();
  return { portal, statement, parameterFormats, parameters, resultFormats };
}

export function parseExecute(body: Buffer): ExecuteMessage {
  const r = new BodyReader(body);
  return { portal: r.cstring(), maxRows: r.int32() };
}

export function parseDescribeOrClose(body: Buffer): DescribeOrClose {
  const r = new BodyReader(body);
  const target = String.fromCharCode(r.byte());
  if (target !== 'S' && target !== 'P')
    throw new ProtocolViolation(`invalid Describe/Close target "${target}"`);
  return { target, name: r.cstring() };
}

export function parseFunctionCall(body: Buffer): { functionOid: number } {
  return { functionOid: new BodyReader(body).uint32() };
}

/** Bounds-checked reading of a message body: a truncated or lying message is a protocol violation. */
export class BodyReader {
  constructor(
    private readonly body: Buffer,
    private offset = 0,
  ) {}

  private need(n: number): void {
    if (this.offset + n > this.body.length) throw new ProtocolViolation('message shorter than its contents');
  }
  byte(): number {
    this.need(1);
    return this.body[this.offset++]!;
  }
  int16(): number {
    this.need(2);
    const v = this.body.readInt16BE(this.offset);
    this.offset += 2;
    if (v < 0) throw new ProtocolViolation('negative count in message');
    return v;
  }
  int16Array(): number[] {
    const count = this.int16();
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      this.need(2);
      out.push(this.body.readInt16BE(this.offset));
      this.offset += 2;
    }
    return out;
  }
  int32(): number {
    this.need(4);
    const v = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.body.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.body.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }
  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolViolation('unterminated string in message');
    const v = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return v;
  }
  get remaining(): number {
    return this.body.length - this.offset;
  }
}
