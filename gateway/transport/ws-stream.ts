/**
 * The tunnel's WebSocket as the session's byte stream, driven directly: each binary message is a
 * 'data' event and each write one message, with no Duplex stream in between (its buffering, its
 * acknowledgement per write and its events cost as much per message as the relay's own work).
 *
 * Backpressure: `write` returns false once the WebSocket's send buffer passes the high-water mark and
 * 'drain' follows when a send completes below it; `pause` stops reading the socket (a message already
 * read may still arrive: the relay queues it). 'end' and 'close' are emitted once, when the WebSocket
 * closes; `end(bytes)` sends them and then the close frame, in order.
 */
import { EventEmitter } from 'node:events';
import type { RawData, WebSocket } from 'ws';
import type { ByteStream } from '../contracts/byte-stream.js';

export class WebSocketPipe extends EventEmitter implements ByteStream {
  private needDrain = false;
  private ended = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly highWaterMark = 1 << 20,
  ) {
    super();
    ws.on('message', (data: RawData) => this.emit('data', asBuffer(data)));
    ws.once('close', () => {
      this.emit('end');
      this.emit('close');
    });
    ws.on('error', (err) => this.emit('error', err));
  }

  get writableLength(): number {
    return this.ws.bufferedAmount;
  }

  write(chunk: Buffer | string): boolean {
    if (this.ended || this.ws.readyState !== this.ws.OPEN) return false;
    this.ws.send(chunk, { binary: true }, this.sent);
    if (this.ws.bufferedAmount <= this.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  end(chunk?: Buffer | string): void {
    if (chunk !== undefined) this.write(chunk);
    this.ended = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000);
  }

  destroy(): void {
    this.ended = true;
    this.ws.terminate();
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  private readonly sent = (err?: Error) => {
    if (err) {
      this.destroy();
      return;
    }
    if (this.needDrain && this.ws.bufferedAmount <= this.highWaterMark) {
      this.needDrain = false;
      this.emit('drain');
    }
  };
}

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
