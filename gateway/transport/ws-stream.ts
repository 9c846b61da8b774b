/**
 * The tunnel's WebSocket as a byte stream for the relay: ws's `createWebSocketStream`, with writes
 * acknowledged as soon as they are queued on the socket while the WebSocket's send buffer is below the
 * high-water mark. The stock stream acknowledges each write only once the socket has flushed it, so a
 * second write waits a full event-loop turn for the first: one WebSocket frame per turn on a large result.
 * Backpressure is kept: above the mark a write is acknowledged when it has been flushed, and the stream's
 * own buffer (and `write()` returning false) does the rest.
 */
import { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import { markCountsHeldWrites } from '../contracts/streams.js';

export function webSocketStream(ws: WebSocket, highWaterMark = 1 << 20): Duplex {
  const stream = createWebSocketStream(ws, { highWaterMark });
  stream._write = (chunk: Buffer, _encoding, callback) => {
    if (ws.readyState !== ws.OPEN || ws.bufferedAmount + chunk.length > highWaterMark) {
      ws.send(chunk, callback);
      return;
    }
    ws.send(chunk, (err) => {
      if (err) stream.destroy(err);
    });
    callback();
  };
  // A write acknowledged early is still held by ws until the socket has flushed it: writableLength
  // counts it, for the relay, which reuses a read buffer only when nothing it wrote is still queued.
  const queued = Object.getOwnPropertyDescriptor(Duplex.prototype, 'writableLength')!.get!;
  Object.defineProperty(stream, 'writableLength', {
    get: () => (queued.call(stream) as number) + ws.bufferedAmount,
  });
  markCountsHeldWrites(stream);
  return stream;
}
