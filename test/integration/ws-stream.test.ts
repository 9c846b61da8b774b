/**
 * The gateway's side of the tunnel (gateway/transport/ws-stream.ts) over a real WebSocket, plain and
 * TLS: what the relay writes arrives byte for byte and in order, one message per write, and
 * backpressure holds: writes are acknowledged early only below the high-water mark.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { webSocketStream } from '../../gateway/transport/ws-stream.js';
import { makeCerts } from '../harness/certs.js';

const certs = makeCerts();

/** A server whose first WebSocket becomes a ws-stream; resolves with it and a client connected to it. */
async function pair(tls: boolean) {
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) })
    : createHttpServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const streamReady = new Promise<Duplex>((resolve) => {
    server.on('upgrade', (request, socket, head) => {
      wss.handleUpgrade(request, socket, head, (ws) => resolve(webSocketStream(ws)));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`${tls ? 'wss' : 'ws'}://localhost:${port}/`, {
    ca: tls ? readFileSync(certs.caCert) : undefined,
    perMessageDeflate: false,
  });
  await new Promise((r, j) => {
    client.once('open', r);
    client.once('error', j);
  });
  const stream = await streamReady;
  return {
    stream,
    client,
    close() {
      client.terminate();
      server.close();
    },
  };
}

const closers: (() => void)[] = [];
afterAll(() => {
  for (const c of closers) c();
});

describe.each([false, true])('ws-stream (tls: %s)', (tls) => {
  it('delivers every byte in order, one message per write', async () => {
    const p = await pair(tls);
    closers.push(p.close);
    const sizes = [1, 16_380, 16_381, 65_536, 100_000, 3, 1_000_000];
    const chunks = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const expected = Buffer.concat(chunks);
    const received: Buffer[] = [];
    let total = 0;
    const done = new Promise<void>((resolve) => {
      p.client.on('message', (data: Buffer) => {
        received.push(data);
        total += data.length;
        if (total >= expected.length) resolve();
      });
    });
    for (const c of chunks) p.stream.write(c);
    await done;
    expect(Buffer.concat(received).equals(expected)).toBe(true);
    expect(received.map((m) => m.length)).toEqual(sizes);
  });

  it('keeps backpressure: a write over the high-water mark is acknowledged only once flushed', async () => {
    const p = await pair(tls);
    closers.push(p.close);
    p.client.pause(); // the peer stops reading
    const big = Buffer.alloc(4 << 20, 7);
    let ok = true;
    for (let i = 0; i < 8 && ok; i++) ok = p.stream.write(big);
    expect(ok).toBe(false);
    const drained = new Promise<void>((r) => p.stream.once('drain', r));
    p.client.resume();
    await drained;
  });
});
