/**
 * The tunnel's WebSocket as a byte stream for the relay.
 *
 * - Writes are acknowledged as soon as they are queued while the WebSocket's send buffer is below the
 *   high-water mark (the stock `createWebSocketStream` acknowledges each write only once the socket has
 *   flushed it, so a second write waits a full event-loop turn: one frame per turn on a large result).
 *   Above the mark a write is acknowledged when it has been flushed: backpressure is kept.
 * - A write is sent as frames of at most TUNNEL_FRAME_PAYLOAD bytes (views into it, no copy), so that
 *   the receiving `hoopctl connect` gets each frame whole in one read and passes it on without copying
 *   it. (A 64 KB message spans several reads, and `ws` joins them into a fresh buffer: an allocation
 *   and a copy per message, which was most of that process's time on a large result.) Over TLS each
 *   frame is written on its own, so that it is exactly one TLS record (a full frame is 16 KiB, the
 *   largest record); over plain TCP the frames of one event-loop turn leave in one write (corked).
 */
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

/** A TLS record carries at most 16 KiB; a server frame of 126–65,535 bytes has a 4-byte header. */
export const TUNNEL_FRAME_PAYLOAD = 16_384 - 4;

export function webSocketStream(ws: WebSocket, socket?: Duplex, highWaterMark = 1 << 20): Duplex {
  const stream = createWebSocketStream(ws, { highWaterMark });
  // Corking a TLS socket would encrypt the turn's frames as one stream, cutting records across frames.
  const corkable = socket && !('encrypted' in socket) ? socket : undefined;
  let corked = false;
  const uncork = () => {
    corked = false;
    corkable?.uncork();
  };
  const failed = (err?: Error) => {
    if (err) stream.destroy(err);
  };
  stream._write = (chunk: Buffer, _encoding, callback) => {
    if (corkable && !corked) {
      corked = true;
      corkable.cork();
      process.nextTick(uncork);
    }
    const wait = ws.readyState !== ws.OPEN || ws.bufferedAmount + chunk.length > highWaterMark;
    if (chunk.length <= TUNNEL_FRAME_PAYLOAD) ws.send(chunk, wait ? callback : failed);
    else {
      for (let at = 0; at < chunk.length; at += TUNNEL_FRAME_PAYLOAD) {
        const last = at + TUNNEL_FRAME_PAYLOAD >= chunk.length;
        ws.send(chunk.subarray(at, at + TUNNEL_FRAME_PAYLOAD), last && wait ? callback : failed);
      }
    }
    if (!wait) callback();
  };
  return stream;
}
