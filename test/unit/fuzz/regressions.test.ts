/**
 * What the fuzzers found, as named regression tests (docs/security.md, "Found by the fuzzers").
 * The session-model finding is in test/unit/session/protocol-corners.test.ts.
 */
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { dataRowColumns, decodeDataRow } from '../../../gateway/pgwire/backend.js';
import { ProtocolViolation } from '../../../gateway/pgwire/frames.js';
import { SSL_REQUEST_CODE } from '../../../gateway/pgwire/frontend.js';
import { acceptStartup } from '../../../gateway/session/startup.js';
import { bytes } from '../pgwire/bytes.js';

describe('found by the fuzzers', () => {
  it('a DataRow whose column lengths do not fit the message is a ProtocolViolation, not a read past the row', () => {
    const lying = bytes().int16(1).int32(100).raw('short').build();
    const negative = bytes().int16(-1).build();
    const trailing = bytes().int16(1).int32(1).raw('xy').build();
    const badLength = bytes().int16(1).int32(-2).build();
    for (const body of [lying, negative, trailing, badLength, Buffer.alloc(1)]) {
      expect(() => dataRowColumns(body)).toThrow(ProtocolViolation);
      expect(() => decodeDataRow(body)).toThrow(ProtocolViolation);
    }
    expect(dataRowColumns(bytes().int16(2).int32(-1).int32(2).raw('ok').build())).toBe(2);
  });

  it('a client that leaves between two handshake packets is refused at once (08006), not at the timeout', async () => {
    const stream = new Duplex({
      read() {},
      write(_chunk, _enc, cb) {
        cb();
      },
    });
    const handshake = acceptStartup(stream, { maxMessageBytes: 1 << 16, timeoutMs: 1e9 });
    // The SSLRequest and the end arrive together: the end comes while the handshake answers the request.
    stream.push(
      bytes()
        .packet((p) => p.int32(SSL_REQUEST_CODE))
        .build(),
    );
    stream.push(null);
    await expect(handshake).rejects.toMatchObject({ sqlstate: '08006' });
  });
});
