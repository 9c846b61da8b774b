/**
 * The tunnel's WebSocket as a byte stream for the relay.
 *
 * - Writes are acknowledged as soon as they are queued while the WebSocket's send buffer is below the
 *   high-water mark (the stock `createWebSocketStream` acknowledges each write only once the socket has
 *   flushed it, so a second write waits a full event-loop turn: one frame per turn on a large result).
 *   Above the mark a write is acknowledged when it has been flushed: backpressure is kept.
 * - Over plain TCP (loopback), a write is sent as frames of at most TUNNEL_FRAME_PAYLOAD bytes (views
 *   into it, no copy) and the frames of one event-loop turn leave in one write (the socket is corked).
 *   The receiving `hoopctl connect` then finds several whole frames in each 64 KB read and passes them
 *   on without copying; a 64 KB message spans reads, and `ws` joins its pieces into a fresh buffer (an
 *   allocation and a copy per message, most of that process's time on a large result). Over TLS the
 *   reader gets one 16 KiB record per read whatever the framing, and small frames only added messages:
 *   measured slower (500 MB result, TLS: 212–244 MB/s with 16 KiB frames vs 233–275 with one message
 *   per write), so there each write stays one message.
 */
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';

/** Frame payload over plain TCP: a 16 KiB frame with its 4-byte header (several fit one 64 KB read). */
export const TUNNEL_FRAME_PAYLOAD = 16_384 - 4;

export function webSocketStream(ws: WebSocket, socket?: Duplex, highWaterMark = 1 << 20): Duplex {
  const stream = createWebSocketStream(ws, { highWaterMark });
  const plain = socket && !('encrypted' in socket) ? socket : undefined;
  let corked = false;
  const uncork = () => {
    corked = false;
    plain?.uncork();
  };
  const failed = (err?: Error) => {
    if (err) stream.destroy(err);
  };
  stream._write = (chunk: Buffer, _encoding, callback) => {
    if (plain && !corked) {
      corked = true;
      plain.cork();
      process.nextTick(uncork);
    }
    const wait = ws.readyState !== ws.OPEN || ws.bufferedAmount + chunk.length > highWaterMark;
    if (!plain || chunk.length <= TUNNEL_FRAME_PAYLOAD) ws.send(chunk, wait ? callback : failed);
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
