/**
 * Frontend framing and decoding against the protocol: every typed message a client may send, the
 * untyped startup-phase packets, messages split at every possible chunk boundary, and malformed or
 * oversized input refused with the SQLSTATE the client's FATAL will carry.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type Frame, FrameReader, ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  PROTOCOL_3_0,
  parseBind,
  parseDescribeOrClose,
  parseExecute,
  parseFunctionCall,
  parseParse,
  parseQuery,
  parseStartupPacket,
  SSL_REQUEST_CODE,
} from '../../../gateway/pgwire/frontend.js';
import { acceptStartup } from '../../../gateway/session/startup.js';
import { bytes } from './bytes.js';

/** One of each typed frontend message, in a realistic order. */
function everyTypedMessage(): { stream: Buffer; types: string[] } {
  const b = bytes()
    .message('Q', (m) => m.cstring('select 1; select 2'))
    .message('P', (m) => m.cstring('s1').cstring('select $1::int, $2::text').int16(2).uint32(23).uint32(25))
    .message('B', (m) =>
      m
        .cstring('p1')
        .cstring('s1')
        .int16(2)
        .int16(0)
        .int16(1)
        .int16(2)
        .int32(2)
        .raw('42')
        .int32(-1)
        .int16(1)
        .int16(1),
    )
    .message('D', (m) => m.char('P').cstring('p1'))
    .message('E', (m) => m.cstring('p1').int32(100))
    .message('H')
    .message('S')
    .message('C', (m) => m.char('S').cstring('s1'))
    .message('F', (m) => m.uint32(1598).int16(0).int16(0).int16(0))
    .message('d', (m) => m.raw('1\tone\n'))
    .message('c')
    .message('f', (m) => m.cstring('client gave up'))
    .message('X');
  return { stream: b.build(), types: ['Q', 'P', 'B', 'D', 'E', 'H', 'S', 'C', 'F', 'd', 'c', 'f', 'X'] };
}

function feed(reader: FrameReader, chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) out.push(...reader.push(c));
  return out;
}

describe('FrameReader: typed messages', () => {
  it('frames every typed frontend message, passing the original bytes through', () => {
    const { stream, types } = everyTypedMessage();
    const frames = new FrameReader(1 << 20).push(stream);
    expect(frames.map((f) => f.type)).toEqual(types);
    expect(Buffer.concat(frames.map((f) => f.bytes)).equals(stream)).toBe(true);
    for (const f of frames) expect(f.bytes.subarray(5).equals(f.body)).toBe(true);
  });

  it('gives the same frames for a stream split at every single boundary', () => {
    const { stream, types } = everyTypedMessage();
    for (let cut = 0; cut <= stream.length; cut++) {
      const frames = feed(new FrameReader(1 << 20), [stream.subarray(0, cut), stream.subarray(cut)]);
      expect(
        frames.map((f) => f.type),
        `cut at ${cut}`,
      ).toEqual(types);
      expect(Buffer.concat(frames.map((f) => f.bytes)).equals(stream), `cut at ${cut}`).toBe(true);
    }
  });

  it('gives the same frames fed one byte at a time, and at every pair of boundaries', () => {
    const { stream, types } = everyTypedMessage();
    const oneByOne = feed(
      new FrameReader(1 << 20),
      [...stream].map((b) => Buffer.from([b])),
    );
    expect(oneByOne.map((f) => f.type)).toEqual(types);
    expect(Buffer.concat(oneByOne.map((f) => f.bytes)).equals(stream)).toBe(true);
    for (let a = 0; a < stream.length; a += 3) {
      for (let b = a; b <= stream.length; b += 5) {
        const frames = feed(new FrameReader(1 << 20), [
          stream.subarray(0, a),
          stream.subarray(a, b),
          stream.subarray(b),
        ]);
        expect(Buffer.concat(frames.map((f) => f.bytes)).equals(stream), `cuts ${a}/${b}`).toBe(true);
      }
    }
  });

  it('reassembles a large message arriving in many chunks', () => {
    const payload = Buffer.alloc(300_000, 0x61);
    const stream = bytes()
      .message('d', (m) => m.raw(payload))
      .message('c')
      .build();
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 16_384) chunks.push(stream.subarray(i, i + 16_384));
    const frames = feed(new FrameReader(1 << 20), chunks);
    expect(frames.map((f) => f.type)).toEqual(['d', 'c']);
    expect(frames[0]!.body.equals(payload)).toBe(true);
  });

  it('refuses a message over the cap with 54000 before buffering it', () => {
    const reader = new FrameReader(1024);
    const header = bytes().char('Q').int32(1_000_000).build();
    const err = (() => {
      try {
        reader.push(header);
      } catch (e) {
        return e as ProtocolViolation;
      }
    })();
    expect(err).toBeInstanceOf(ProtocolViolation);
    expect(err!.sqlstate).toBe('54000');
    expect(err!.message).toMatch(/exceeds the gateway's limit of 1024 bytes/);
  });

  it('accepts a message of exactly the cap', () => {
    const body = Buffer.alloc(1024 - 4, 0x20);
    const frames = new FrameReader(1024).push(
      bytes()
        .message('d', (m) => m.raw(body))
        .build(),
    );
    expect(frames).toHaveLength(1);
  });

  it('refuses a length below 4 as a protocol violation (08P01)', () => {
    for (const length of [0, 3, -1, -2147483648]) {
      expect(() => new FrameReader(1 << 20).push(bytes().char('Q').int32(length).build())).toThrowError(
        expect.objectContaining({ sqlstate: '08P01' }),
      );
    }
  });
});

describe('FrameReader: runs of one message type (next with runType)', () => {
  const D = 0x44;
  const result = (rows: number) => {
    let b = bytes().message('T', (m) => m.int16(0));
    for (let i = 0; i < rows; i++)
      b = b.message('D', (m) =>
        m
          .int16(1)
          .int32(3)
          .raw(Buffer.from(`r${i % 10}x`.slice(0, 3))),
      );
    return b
      .message('C', (m) => m.cstring(`SELECT ${rows}`))
      .message('Z', (m) => m.char('I'))
      .build();
  };
  /** Feed chunks, reading rows as runs: [type, count] per frame, and the bytes seen. */
  const readRuns = (chunks: Buffer[]) => {
    const reader = new FrameReader(1 << 20);
    const seen: [string, number][] = [];
    const out: Buffer[] = [];
    for (const c of chunks) {
      reader.feed(c);
      for (let f = reader.next(D); f; f = reader.next(D)) {
        seen.push([f.type, f.count ?? 1]);
        out.push(f.bytes);
      }
    }
    return { seen, bytes: Buffer.concat(out) };
  };

  it('returns consecutive DataRows as one frame with their count, the bytes untouched', () => {
    const stream = result(50);
    const { seen, bytes: out } = readRuns([stream]);
    expect(seen).toEqual([
      ['T', 1],
      ['D', 50],
      ['C', 1],
      ['Z', 1],
    ]);
    expect(out.equals(stream)).toBe(true);
  });

  it('counts every row exactly once whatever the chunk boundaries', () => {
    const stream = result(40);
    for (let cut = 0; cut <= stream.length; cut++) {
      const { seen, bytes: out } = readRuns([stream.subarray(0, cut), stream.subarray(cut)]);
      const rows = seen.filter(([t]) => t === 'D').reduce((n, [, c]) => n + c, 0);
      expect(rows, `cut at ${cut}`).toBe(40);
      expect(out.equals(stream), `cut at ${cut}`).toBe(true);
    }
  });

  it('keeps a run whole message by message: an oversized row inside a run is still refused', () => {
    const stream = Buffer.concat([
      result(3),
      bytes()
        .char('D')
        .int32(1 << 21)
        .build(),
    ]);
    const reader = new FrameReader(1 << 20);
    reader.feed(stream);
    expect(() => {
      while (reader.next(D));
    }).toThrowError(expect.objectContaining({ sqlstate: '54000' }));
  });

  it('reads borrowed chunks through one buffer the caller overwrites after each: every byte comes out right', () => {
    // As the relay reads the upstream: each read lands in the same memory, which is scribbled over
    // once the chunk's frames have been handled. What the reader keeps must be its own copy.
    const stream = Buffer.concat([result(40), result(7)]);
    const scratch = Buffer.alloc(64);
    for (const size of [1, 2, 3, 5, 7, 11, 13, 29, 64]) {
      const reader = new FrameReader(1 << 20);
      const out: Buffer[] = [];
      let rows = 0;
      for (let at = 0; at < stream.length; at += size) {
        const n = stream.copy(scratch, 0, at, Math.min(at + size, stream.length));
        reader.feed(scratch.subarray(0, n), true);
        for (let f = reader.next(D); f; f = reader.next(D)) {
          out.push(Buffer.from(f.bytes)); // handled now, as the relay writes it now
          if (f.type === 'D') rows += f.count ?? 1;
        }
        scratch.fill(0xee);
      }
      expect(rows, `reads of ${size}`).toBe(47);
      expect(Buffer.concat(out).equals(stream), `reads of ${size}`).toBe(true);
    }
  });

  it('returns single messages when no run type is given', () => {
    const { seen } = (() => {
      const reader = new FrameReader(1 << 20);
      reader.feed(result(3));
      const seen: string[] = [];
      for (let f = reader.next(); f; f = reader.next()) seen.push(f.type + (f.count ?? ''));
      return { seen };
    })();
    expect(seen).toEqual(['T', 'D', 'D', 'D', 'C', 'Z']);
  });
});

describe('FrameReader: the startup phase', () => {
  const startup = bytes()
    .packet((p) =>
      p.int32(PROTOCOL_3_0).cstring('user').cstring('hoop').cstring('database').cstring('db').byte(0),
    )
    .build();

  it('returns one untyped packet at a time, then typed messages after expectTyped()', () => {
    const query = bytes()
      .message('Q', (m) => m.cstring('select 1'))
      .build();
    const reader = new FrameReader(1 << 20, { startup: true });
    const first = reader.push(Buffer.concat([startup, query]));
    expect(first).toHaveLength(1);
    expect(first[0]!.type).toBe('');
    reader.expectTyped();
    const rest = reader.push(Buffer.alloc(0));
    expect(rest.map((f) => f.type)).toEqual(['Q']);
  });

  it('frames the startup packet split at every boundary', () => {
    for (let cut = 0; cut <= startup.length; cut++) {
      const reader = new FrameReader(1 << 20, { startup: true });
      const frames = feed(reader, [startup.subarray(0, cut), startup.subarray(cut)]);
      expect(frames, `cut at ${cut}`).toHaveLength(1);
      expect(frames[0]!.bytes.equals(startup)).toBe(true);
    }
  });

  it('refuses a startup packet shorter than 8 bytes', () => {
    expect(() => new FrameReader(1 << 20, { startup: true }).push(bytes().int32(4).int32(0).build())).toThrow(
      ProtocolViolation,
    );
  });
});

describe('startup packets', () => {
  const body = (b: ReturnType<typeof bytes>) => b.build().subarray(4);

  it('decodes protocol 3.0 with its parameters', () => {
    const p = parseStartupPacket(
      body(
        bytes().packet((p) =>
          p
            .int32(PROTOCOL_3_0)
            .cstring('user')
            .cstring('hoop')
            .cstring('application_name')
            .cstring('psql')
            .byte(0),
        ),
      ),
    );
    expect(p).toEqual({
      kind: 'startup',
      major: 3,
      minor: 0,
      parameters: { user: 'hoop', application_name: 'psql' },
      protocolOptions: [],
    });
  });

  it('decodes protocol 3.2 and _pq_ options (answered with NegotiateProtocolVersion)', () => {
    const p = parseStartupPacket(
      body(
        bytes().packet((p) =>
          p
            .int32((3 << 16) | 2)
            .cstring('user')
            .cstring('hoop')
            .cstring('_pq_.command_trigger')
            .cstring('on')
            .byte(0),
        ),
      ),
    );
    expect(p).toMatchObject({
      kind: 'startup',
      major: 3,
      minor: 2,
      protocolOptions: ['_pq_.command_trigger'],
    });
  });

  it('decodes SSLRequest, GSSENCRequest and CancelRequest (4-byte and longer 3.2 keys)', () => {
    expect(parseStartupPacket(body(bytes().packet((p) => p.int32(SSL_REQUEST_CODE))))).toEqual({
      kind: 'ssl-request',
    });
    expect(parseStartupPacket(body(bytes().packet((p) => p.int32(GSSENC_REQUEST_CODE))))).toEqual({
      kind: 'gssenc-request',
    });
    const cancel = parseStartupPacket(
      body(bytes().packet((p) => p.int32(CANCEL_REQUEST_CODE).int32(1234).int32(-7))),
    );
    expect(cancel).toMatchObject({ kind: 'cancel', processId: 1234 });
    expect((cancel as { secretKey: Buffer }).secretKey.readInt32BE(0)).toBe(-7);
    const long = parseStartupPacket(
      body(bytes().packet((p) => p.int32(CANCEL_REQUEST_CODE).int32(99).raw(Buffer.alloc(32, 7)))),
    );
    expect((long as { secretKey: Buffer }).secretKey.length).toBe(32);
  });

  it('refuses protocol 2.0, a short cancel and an unterminated parameter', () => {
    expect(() => parseStartupPacket(body(bytes().packet((p) => p.int32(2 << 16).byte(0))))).toThrowError(
      expect.objectContaining({ sqlstate: '0A000' }),
    );
    expect(() =>
      parseStartupPacket(body(bytes().packet((p) => p.int32(CANCEL_REQUEST_CODE).int32(1)))),
    ).toThrow(ProtocolViolation);
    expect(() => parseStartupPacket(body(bytes().packet((p) => p.int32(PROTOCOL_3_0).raw('user'))))).toThrow(
      /unterminated/,
    );
  });
});

describe('typed message decoding', () => {
  const frames = new FrameReader(1 << 20).push(everyTypedMessage().stream);
  const byType = (t: string) => frames.find((f) => f.type === t)!.body;

  it('Query, Parse, Bind, Execute, Describe, Close, FunctionCall', () => {
    expect(parseQuery(byType('Q'))).toEqual({ sql: 'select 1; select 2' });
    expect(parseParse(byType('P'))).toEqual({
      statement: 's1',
      sql: 'select $1::int, $2::text',
      parameterTypes: [23, 25],
    });
    const bind = parseBind(byType('B'));
    expect(bind).toMatchObject({
      portal: 'p1',
      statement: 's1',
      parameterFormats: [0, 1],
      resultFormats: [1],
    });
    expect(bind.parameters.map((p) => p?.toString())).toEqual(['42', undefined]);
    expect(bind.parameters[1]).toBeNull();
    expect(parseExecute(byType('E'))).toEqual({ portal: 'p1', maxRows: 100 });
    expect(parseDescribeOrClose(byType('D'))).toEqual({ target: 'P', name: 'p1' });
    expect(parseDescribeOrClose(byType('C'))).toEqual({ target: 'S', name: 's1' });
    expect(parseFunctionCall(byType('F'))).toEqual({ functionOid: 1598 });
  });

  it('refuses truncated and lying bodies as protocol violations', () => {
    const bad = [
      () => parseQuery(bytes().raw('no terminator').build()),
      () => parseParse(bytes().cstring('s').cstring('select 1').int16(3).uint32(23).build()),
      () => parseParse(bytes().cstring('s').cstring('select 1').int16(-1).build()),
      () => parseBind(bytes().cstring('').cstring('').int16(0).int16(1).int32(100).raw('short').build()),
      () => parseBind(bytes().cstring('').cstring('').int16(0).int16(0).build()),
      () => parseExecute(bytes().cstring('p').int16(0).build()),
      () => parseDescribeOrClose(bytes().char('X').cstring('n').build()),
      () => parseDescribeOrClose(bytes().build()),
      () => parseFunctionCall(bytes().int16(1).build()),
    ];
    for (const [i, fn] of bad.entries()) expect(fn, `case ${i}`).toThrow(ProtocolViolation);
  });
});

/** A client stream for the handshake: what the test writes in, what the gateway answers. */
function fakeClient(): { stream: Duplex; answers: Buffer[]; send(b: Buffer): void } {
  const answers: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      answers.push(chunk);
      cb();
    },
  });
  return { stream, answers, send: (b) => stream.push(b) };
}

describe('the client handshake (startup.ts)', () => {
  const startup = (version: number, extra: [string, string][] = []) =>
    bytes()
      .packet((p) => {
        p.int32(version).cstring('user').cstring('hoop').cstring('database').cstring('prod-db');
        for (const [k, v] of extra) p.cstring(k).cstring(v);
        return p.byte(0);
      })
      .build();

  it("answers SSLRequest and GSSENCRequest with 'N', then accepts 3.0", async () => {
    const client = fakeClient();
    const done = acceptStartup(client.stream, { maxMessageBytes: 1 << 20 });
    client.send(
      bytes()
        .packet((p) => p.int32(SSL_REQUEST_CODE))
        .build(),
    );
    client.send(
      bytes()
        .packet((p) => p.int32(GSSENC_REQUEST_CODE))
        .build(),
    );
    client.send(startup(PROTOCOL_3_0, [['application_name', 'x']]));
    const { result } = await done;
    expect(result).toMatchObject({
      kind: 'session',
      settings: [{ name: 'application_name', value: 'x' }],
    });
    const all = Buffer.concat(client.answers);
    expect(all.subarray(0, 2).toString()).toBe('NN');
    expect(all[2]).toBe('R'.charCodeAt(0)); // AuthenticationOk, no NegotiateProtocolVersion
  });

  it('answers protocol 3.2 with NegotiateProtocolVersion (newest 3.0, unsupported options listed)', async () => {
    const client = fakeClient();
    const done = acceptStartup(client.stream, { maxMessageBytes: 1 << 20 });
    client.send(startup((3 << 16) | 2, [['_pq_.something', 'on']]));
    await done;
    const all = Buffer.concat(client.answers);
    expect(String.fromCharCode(all[0]!)).toBe('v');
    const length = all.readInt32BE(1);
    const v = all.subarray(5, 1 + length);
    expect(v.readInt32BE(0)).toBe(0); // newest minor version we speak
    expect(v.readInt32BE(4)).toBe(1);
    expect(v.subarray(8).toString()).toBe('_pq_.something\0');
    expect(String.fromCharCode(all[1 + length]!)).toBe('R');
  });

  it('hands a CancelRequest back to the caller', async () => {
    const client = fakeClient();
    const done = acceptStartup(client.stream, { maxMessageBytes: 1 << 20 });
    client.send(
      bytes()
        .packet((p) => p.int32(CANCEL_REQUEST_CODE).int32(77).int32(88))
        .build(),
    );
    const { result } = await done;
    expect(result).toMatchObject({ kind: 'cancel', processId: 77 });
  });

  it('keeps bytes a client pipelined after the startup packet', async () => {
    const client = fakeClient();
    const done = acceptStartup(client.stream, { maxMessageBytes: 1 << 20 });
    const query = bytes()
      .message('Q', (m) => m.cstring('select 1'))
      .build();
    client.send(Buffer.concat([startup(PROTOCOL_3_0), query]));
    const { leftover } = await done;
    expect(leftover.equals(query)).toBe(true);
  });

  it('refuses garbage and an oversized startup packet', async () => {
    const garbage = fakeClient();
    const a = acceptStartup(garbage.stream, { maxMessageBytes: 1 << 20 });
    garbage.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await expect(a).rejects.toThrow(ProtocolViolation);
    const big = fakeClient();
    const b = acceptStartup(big.stream, { maxMessageBytes: 4096 });
    big.send(bytes().int32(100_000).int32(PROTOCOL_3_0).build());
    await expect(b).rejects.toThrowError(expect.objectContaining({ sqlstate: '54000' }));
  });
});
