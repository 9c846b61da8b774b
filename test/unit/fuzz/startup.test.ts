/**
 * Property-based fuzzing of the client handshake (gateway/session/startup.ts), driven through the real
 * code over an in-memory stream, with each login (SCRAM for tunnels, a cleartext token for the native
 * listener, none): SSLRequest, GSSENCRequest, CancelRequest (any secret length),
 * protocol versions (3.0, 3.2 and its _pq_ options, 2.0, nonsense), StartupMessage with odd
 * parameters, SASL messages (valid, lying lengths, garbage), bad lengths, typed junk, all split at
 * arbitrary boundaries and cut off at any point. The handshake must settle as soon as the client is
 * gone — a session, a cancel, or a refusal with a SQLSTATE (StartupRefused or ProtocolViolation) —
 * never another error, never hang, never answer with anything but well-framed messages.
 */
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader, ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
} from '../../../gateway/pgwire/frontend.js';
import { acceptStartup, refuseStartup, StartupRefused } from '../../../gateway/session/startup.js';
import { ScramClient } from '../../../src/shared/scram.js';
import { bytes } from '../pgwire/bytes.js';
import { fuzzAsync } from './budget.js';

const PASSWORD = 'one-time-Pa55';

/** The gateway's side of an in-memory connection: what the client sends arrives as 'data'. */
function memoryClient() {
  const answers: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      answers.push(chunk);
      cb();
    },
  });
  return { stream, answers, send: (b: Buffer) => stream.push(b), end: () => stream.push(null) };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Follow the handshake from the start (handled at once, as runSession does); the result resolves once
 * the test is done sending and the handshake has settled — within a few turns of the event loop after
 * the client is gone, never by waiting for its timeout.
 */
function settledSoon<T>(promise: Promise<T>): () => Promise<{ value?: T; error?: unknown }> {
  let outcome: { value?: T; error?: unknown } | undefined;
  promise.then(
    (value) => {
      outcome = { value };
    },
    (error) => {
      outcome = { error };
    },
  );
  return async () => {
    for (let i = 0; i < 20 && !outcome; i++) await tick();
    if (!outcome) throw new Error('the handshake did not settle after the client left');
    return outcome;
  };
}

const cstr = fc.string({ maxLength: 24 }).filter((s) => !s.includes('\0'));
const param = fc.oneof(
  fc.tuple(fc.constantFrom('user', 'database', 'application_name', 'options', 'DateStyle', 'TimeZone'), cstr),
  fc.tuple(
    fc.constant('client_encoding'),
    fc.constantFrom('UTF8', 'utf-8', 'SJIS', 'BIG5', 'GBK', 'auto', ''),
  ),
  fc.tuple(fc.constant('replication'), fc.constantFrom('true', 'database', 'false', 'off', '1', 'yes')),
  fc.tuple(fc.constantFrom('_pq_.compression', '_pq_.'), cstr),
  fc.tuple(cstr, cstr),
);
const version = fc.oneof(
  fc.constantFrom(PROTOCOL_3_0, (3 << 16) | 2, (3 << 16) | 0xffff, 2 << 16, 4 << 16, 1234, 0),
  fc.integer(),
);
const startupPacket = fc
  .record({ version, params: fc.array(param, { maxLength: 6 }), terminated: fc.boolean() })
  .map(({ version, params, terminated }) =>
    bytes()
      .packet((p) => {
        p.int32(version);
        for (const [k, v] of params) p.cstring(k).cstring(v);
        return terminated ? p.byte(0) : p;
      })
      .build(),
  );
const saslInitial = fc
  .record({
    mechanism: fc.constantFrom('SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN', ''),
    data: fc.oneof(fc.constant('n,,n=,r=abcdefgh'), fc.constant('y,,n=,r=x'), fc.string({ maxLength: 60 })),
    lie: fc.option(fc.integer({ min: -5, max: 1 << 20 })),
  })
  .map(({ mechanism, data, lie }) =>
    bytes()
      .message('p', (m) =>
        m
          .cstring(mechanism)
          .int32(lie ?? Buffer.byteLength(data))
          .raw(data),
      )
      .build(),
  );
const packet = fc.oneof(
  fc.constant(
    bytes()
      .packet((p) => p.int32(SSL_REQUEST_CODE))
      .build(),
  ),
  fc.constant(
    bytes()
      .packet((p) => p.int32(GSSENC_REQUEST_CODE))
      .build(),
  ),
  fc.tuple(fc.integer(), fc.uint8Array({ maxLength: 300 })).map(([pid, secret]) =>
    bytes()
      .packet((p) => p.int32(CANCEL_REQUEST_CODE).int32(pid).raw(Buffer.from(secret)))
      .build(),
  ),
  startupPacket,
  startupPacket,
  saslInitial,
  fc.constant(
    bytes()
      .message('p', (m) => m.cstring(PASSWORD))
      .build(),
  ),
  fc.string({ maxLength: 120 }).map((s) =>
    bytes()
      .message('p', (m) => m.raw(s))
      .build(),
  ),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 40 })).map(([t, body]) =>
    bytes()
      .message(String.fromCharCode(t), (m) => m.raw(Buffer.from(body)))
      .build(),
  ),
  fc.integer().map((length) => bytes().int32(length).build()),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
);
const cuts = fc.array(fc.nat(), { maxLength: 8 });

/** Every answer the gateway wrote is whole, well-framed messages (or the single-byte SSL/GSS answers). */
function expectWellFramed(answers: Buffer[]): void {
  const reader = new FrameReader(1 << 20);
  for (const a of answers) {
    if (a.length === 1 && a[0] === 0x4e) continue; // 'N' to SSLRequest / GSSENCRequest
    reader.push(a);
  }
  expect(reader.buffered).toBe(0);
}

describe('fuzz: the client handshake', () => {
  it('arbitrary packet sequences in arbitrary chunks, cut off anywhere: a result or a refusal with a SQLSTATE', async () => {
    await fuzzAsync(
      'startup: packet sequences',
      200,
      fc.asyncProperty(
        fc.array(packet, { maxLength: 6 }),
        cuts,
        fc.constantFrom('none', 'scram', 'cleartext'),
        fc.boolean(),
        async (packets, at, login, pause) => {
          const client = memoryClient();
          const done = settledSoon(
            acceptStartup(client.stream, {
              maxMessageBytes: 1 << 16,
              localPassword: login === 'scram' ? PASSWORD : undefined,
              // The native listener: a cleartext password (an access token over TLS), checked outside.
              passwordCheck:
                login === 'cleartext'
                  ? async (password) => {
                      if (password !== PASSWORD) throw new StartupRefused('bad token', '28P01');
                    }
                  : undefined,
              timeoutMs: 1e9,
            }),
          );
          const data = Buffer.concat(packets);
          let from = 0;
          for (const cut of [...at.map((c) => c % (data.length + 1)), data.length].sort((a, b) => a - b)) {
            client.send(data.subarray(from, cut));
            from = cut;
            // With pause the gateway reads each chunk before the next; without, the client leaves at once.
            if (pause) await tick();
          }
          client.end();
          const { error } = await done();
          if (error !== undefined) {
            expect(error instanceof StartupRefused || error instanceof ProtocolViolation, String(error)).toBe(
              true,
            );
            const fatal = memoryClient();
            refuseStartup(fatal.stream, error as Error);
            expectWellFramed(fatal.answers);
          }
          expectWellFramed(client.answers);
        },
      ),
    );
  });

  it('SSL/GSS requests (each at most once), then a startup and the SCRAM exchange: the right password opens a session, any other fails 28P01', async () => {
    await fuzzAsync(
      'startup: SCRAM handshakes',
      20,
      fc.asyncProperty(
        fc.shuffledSubarray([SSL_REQUEST_CODE, GSSENC_REQUEST_CODE]),
        fc.array(param, { maxLength: 4 }),
        fc.option(fc.string({ maxLength: 12 })),
        async (requests, params, wrong) => {
          const client = memoryClient();
          const done = settledSoon(
            acceptStartup(client.stream, {
              maxMessageBytes: 1 << 16,
              localPassword: PASSWORD,
              timeoutMs: 1e9,
            }),
          );
          for (const code of requests)
            client.send(
              bytes()
                .packet((p) => p.int32(code))
                .build(),
            );
          const ordinary = params.filter(
            ([k, v]) => !['replication', 'client_encoding'].includes(k) && v !== undefined,
          );
          client.send(
            bytes()
              .packet((p) => {
                p.int32(PROTOCOL_3_0);
                for (const [k, v] of ordinary) if (k && !k.startsWith('_pq_.')) p.cstring(k).cstring(v);
                return p.byte(0);
              })
              .build(),
          );
          const scram = new ScramClient(wrong === null || wrong === PASSWORD ? PASSWORD : wrong);
          await tick();
          const initial = scram.first();
          client.send(
            bytes()
              .message('p', (m) => m.cstring('SCRAM-SHA-256').int32(Buffer.byteLength(initial)).raw(initial))
              .build(),
          );
          await tick();
          const serverFirst = lastAuthentication(client.answers, 11);
          client.send(
            bytes()
              .message('p', (m) => m.raw(scram.final(serverFirst)))
              .build(),
          );
          const { value, error } = await done();
          if (wrong === null || wrong === PASSWORD) expect(value?.result.kind).toBe('session');
          else expect(error).toMatchObject({ sqlstate: '28P01' });
          client.end();
        },
      ),
    );
  });
});

/** The data of the last AuthenticationRequest of this code the gateway sent (11: SASLContinue). */
function lastAuthentication(answers: Buffer[], code: number): string {
  const reader = new FrameReader(1 << 20);
  let found = '';
  for (const a of answers) {
    if (a.length === 1) continue;
    for (const f of reader.push(a))
      if (f.type === 'R' && f.body.readInt32BE(0) === code) found = f.body.subarray(4).toString();
  }
  return found;
}
