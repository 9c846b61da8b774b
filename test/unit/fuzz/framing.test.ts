/**
 * Property-based fuzzing of the framers and decoders (issue 12, item 8): arbitrary bytes, valid
 * messages split at every boundary, oversized and truncated lengths, bad type bytes. The only error
 * any of them may raise is a ProtocolViolation (which ends that session with a FATAL); anything else
 * would be a crash path. Seeded and bounded here; bench/fuzz.mjs runs the same properties at scale.
 */
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import {
  decodeCommandComplete,
  decodeDataRow,
  decodeFields,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeDataRow,
} from '../../../gateway/pgwire/backend.js';
import { type Frame, FrameReader, ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import {
  parseBind,
  parseDescribeOrClose,
  parseExecute,
  parseFunctionCall,
  parseParse,
  parseQuery,
  parseStartupPacket,
} from '../../../gateway/pgwire/frontend.js';
import { fuzz } from './budget.js';

/** Call `f`; a ProtocolViolation is an allowed outcome, any other error fails the property. */
function violationOr<T>(f: () => T): T | ProtocolViolation {
  try {
    return f();
  } catch (err) {
    if (err instanceof ProtocolViolation) return err;
    throw err;
  }
}

/** Cut `data` at the given fractions into chunks (empty chunks included: a read may bring nothing). */
function chunksOf(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * (data.length + 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(data.subarray(at, p));
    at = p;
  }
  out.push(data.subarray(at));
  return out;
}

const TYPES = [...'QPBEDHSCFdcfXpTDZNAGHWvKRtns123ICEVIS'];
const message = fc
  .record({ type: fc.constantFrom(...TYPES), body: fc.uint8Array({ maxLength: 300 }) })
  .map(({ type, body }) => {
    const out = Buffer.alloc(5 + body.length);
    out[0] = type.charCodeAt(0);
    out.writeInt32BE(body.length + 4, 1);
    Buffer.from(body).copy(out, 5);
    return { type, bytes: out };
  });
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 });
const LIMIT = 4096;

describe('fuzz: FrameReader', () => {
  it('arbitrary bytes in arbitrary chunks: frames of the input, in order, or a ProtocolViolation', () => {
    fuzz(
      'frames: arbitrary bytes',
      1500,
      fc.property(fc.uint8Array({ maxLength: 2000 }), cuts, fc.boolean(), (data, at, startup) => {
        const input = Buffer.from(data);
        const reader = new FrameReader(LIMIT, { startup });
        const frames: Frame[] = [];
        for (const chunk of chunksOf(input, at)) {
          const got = violationOr(() => reader.push(chunk));
          if (got instanceof ProtocolViolation) {
            expect(['08P01', '54000']).toContain(got.sqlstate);
            return;
          }
          frames.push(...got);
          // In the startup phase one packet comes at a time; the rest is what the caller reads next.
          if (startup && frames.length > 0) return;
        }
        const framed = Buffer.concat(frames.map((f) => f.bytes));
        expect(framed.equals(input.subarray(0, framed.length))).toBe(true);
        expect(framed.length + reader.buffered).toBe(input.length);
        for (const f of frames) expect(f.bytes.length).toBeLessThanOrEqual(LIMIT + 1);
      }),
    );
  });

  it('valid messages split at every boundary: the same frames, the same bytes, as read whole', () => {
    fuzz(
      'frames: split messages',
      1000,
      fc.property(fc.array(message, { minLength: 1, maxLength: 20 }), cuts, (messages, at) => {
        const stream = Buffer.concat(messages.map((m) => m.bytes));
        const frames: Frame[] = [];
        const reader = new FrameReader(1 << 20);
        for (const chunk of chunksOf(stream, at)) frames.push(...reader.push(chunk));
        expect(frames.map((f) => f.type)).toEqual(messages.map((m) => m.type));
        expect(Buffer.concat(frames.map((f) => f.bytes)).equals(stream)).toBe(true);
        for (const f of frames) expect(f.body.equals(f.bytes.subarray(5))).toBe(true);
        expect(reader.buffered).toBe(0);
      }),
    );
  });

  it('pull reading with runs of DataRows (the upstream side): every byte once, rows counted', () => {
    fuzz(
      'frames: runs of rows',
      1000,
      fc.property(fc.array(message, { minLength: 1, maxLength: 30 }), cuts, (messages, at) => {
        const stream = Buffer.concat(messages.map((m) => m.bytes));
        const reader = new FrameReader(1 << 20);
        const out: Buffer[] = [];
        let count = 0;
        for (const chunk of chunksOf(stream, at)) {
          reader.feed(chunk);
          for (let f = reader.next(0x44); f; f = reader.next(0x44)) {
            out.push(f.bytes);
            count += f.count ?? 1;
          }
        }
        expect(Buffer.concat(out).equals(stream)).toBe(true);
        expect(count).toBe(messages.length);
      }),
    );
  });

  it('lengths: below 4 (8 for a startup packet) are 08P01, above the limit 54000, a truncated message waits', () => {
    fuzz(
      'frames: lengths',
      1500,
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.boolean(), (length, startup) => {
        const head = Buffer.alloc(startup ? 4 : 5);
        if (!startup) head[0] = 0x51;
        head.writeInt32BE(length, startup ? 0 : 1);
        const got = violationOr(() => new FrameReader(LIMIT, { startup }).push(head));
        if (length < (startup ? 8 : 4)) expect(got).toMatchObject({ sqlstate: '08P01' });
        else if (length > LIMIT) expect(got).toMatchObject({ sqlstate: '54000' });
        else if (length === 4 && !startup) expect(got).toHaveLength(1);
        else expect(got).toEqual([]);
      }),
    );
  });
});

describe('fuzz: frontend decoders', () => {
  const decoders = {
    startup: parseStartupPacket,
    query: parseQuery,
    parse: parseParse,
    bind: parseBind,
    execute: parseExecute,
    describeOrClose: parseDescribeOrClose,
    functionCall: parseFunctionCall,
  };

  it('arbitrary bodies: a message or a ProtocolViolation, for every decoder', () => {
    fuzz(
      'frontend decoders: arbitrary bodies',
      20000,
      fc.property(
        fc.constantFrom(...Object.values(decoders)),
        fc.uint8Array({ maxLength: 200 }),
        (decode, body) => {
          violationOr(() => decode(Buffer.from(body)));
        },
      ),
    );
  });

  it('messages as real clients encode them decode to what was sent', () => {
    const name = fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0'));
    const sql = fc.string({ maxLength: 200, unit: 'grapheme' }).filter((s) => !s.includes('\0'));
    fuzz(
      'frontend decoders: round trips',
      1000,
      fc.property(
        name,
        name,
        sql,
        fc.array(fc.option(fc.string({ maxLength: 30 }), { nil: null }), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 8 }),
        (a, b, text, values, types) => {
          expect(parseQuery(serialize.query(text).subarray(5)).sql).toBe(text);
          expect(parseParse(serialize.parse({ name: a, text, types }).subarray(5))).toEqual({
            statement: a,
            sql: text,
            parameterTypes: types,
          });
          const bound = parseBind(serialize.bind({ portal: a, statement: b, values }).subarray(5));
          expect(bound).toMatchObject({ portal: a, statement: b });
          expect(bound.parameters.map((v) => (v === null ? null : v.toString('utf8')))).toEqual(values);
          expect(parseExecute(serialize.execute({ portal: a, rows: 7 }).subarray(5))).toEqual({
            portal: a,
            maxRows: 7,
          });
          expect(parseDescribeOrClose(serialize.describe({ type: 'P', name: b }).subarray(5))).toEqual({
            target: 'P',
            name: b,
          });
        },
      ),
    );
  });
});

describe('fuzz: backend decoders (what the database sends)', () => {
  const decoders = [
    decodeFields,
    decodeRowDescription,
    decodeDataRow,
    decodeCommandComplete,
    decodeReadyForQuery,
  ] as const;

  it('arbitrary bodies: a message or a ProtocolViolation, for every decoder', () => {
    fuzz(
      'backend decoders: arbitrary bodies',
      20000,
      fc.property(fc.constantFrom(...decoders), fc.uint8Array({ maxLength: 200 }), (decode, body) => {
        violationOr(() => decode(Buffer.from(body)));
      }),
    );
  });

  it('DataRow: what encodeDataRow writes decodes to the same values', () => {
    fuzz(
      'backend decoders: DataRow round trips',
      1000,
      fc.property(
        fc.array(fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }), { maxLength: 20 }),
        (values) => {
          const row = values.map((v) => (v === null ? null : Buffer.from(v)));
          expect(decodeDataRow(encodeDataRow(row).subarray(5))).toEqual(row);
        },
      ),
    );
  });
});
