/**
 * The gateway's side of the tunnel (gateway/transport/ws-stream.ts) over a real WebSocket, plain and
 * TLS: what the relay writes arrives byte for byte and in order, one message per write; what the client
 * sends arrives as 'data' in order; backpressure holds (write returns false above the high-water mark,
 * 'drain' follows); end(bytes) delivers them before the close, and a close from either side ends it.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { WebSocketPipe } from '../../gateway/transport/ws-stream.js';
import { makeCerts } from '../harness/certs.js';

const certs = makeCerts();

/** A server whose first WebSocket becomes a pipe; resolves with it and a client connected to it. */
async function pair(tls: boolean) {
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) })
    : createHttpServer();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const streamReady = new Promise<WebSocketPipe>((resolve) => {
    server.on('upgrade', (request, socket, head) => {
      wss.handleUpgrade(request, socket, head, (ws) => resolve(new WebSocketPipe(ws)));
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

  it('delivers what the client sends as data, in order, and pauses reading on request', async () => {
    const p = await pair(tls);
    closers.push(p.close);
    const received: Buffer[] = [];
    p.stream.on('data', (chunk) => received.push(chunk));
    const sent = [Buffer.from('first'), Buffer.alloc(70_000, 9), Buffer.from('last')];
    for (const b of sent) p.client.send(b);
    await expect.poll(() => Buffer.concat(received).length).toBe(70_009);
    expect(Buffer.concat(received).equals(Buffer.concat(sent))).toBe(true);
    p.stream.pause();
    p.client.send(Buffer.from('while paused'));
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toHaveLength(3);
    p.stream.resume();
    await expect.poll(() => received.length).toBe(4);
  });

  it('end(bytes) sends them before the close frame; either side closing emits end and close once', async () => {
    const p = await pair(tls);
    closers.push(p.close);
    const got: Buffer[] = [];
    p.client.on('message', (data: Buffer) => got.push(data));
    const clientClosed = new Promise<number>((r) => p.client.once('close', (code) => r(code)));
    const events: string[] = [];
    p.stream.on('end', () => events.push('end'));
    p.stream.on('close', () => events.push('close'));
    p.stream.write(Buffer.from('one'));
    p.stream.end(Buffer.from('two'));
    expect(await clientClosed).toBe(1000);
    expect(Buffer.concat(got).toString()).toBe('onetwo');
    await expect.poll(() => events).toEqual(['end', 'close']);
    expect(p.stream.write(Buffer.from('late'))).toBe(false);

    const q = await pair(tls);
    closers.push(q.close);
    const ended = new Promise<void>((r) => q.stream.once('close', r));
    q.client.close();
    await ended;
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
