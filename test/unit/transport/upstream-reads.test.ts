/**
 * Reads into reused memory (transport/upstream-reads.ts), over a real loopback socket: which buffer a
 * read lands in, when the reader gets a view and when a copy, and that a buffer the reader kept is never
 * read into again.
 */
import { createServer, connect as netConnect, type Server, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { countsHeldWrites, markCountsHeldWrites } from '../../../gateway/contracts/streams.js';
import { UpstreamReads } from '../../../gateway/transport/upstream-reads.js';

let server: Server | undefined;
let client: Socket | undefined;
afterEach(() => {
  client?.destroy();
  server?.close();
});

/** A server that sends what `send` gets, when asked; a client socket reading through `reads`. */
async function pair(reads: UpstreamReads): Promise<(data: Buffer) => Promise<void>> {
  let peer: Socket | undefined;
  const accepted = new Promise<void>((resolve) => {
    server = createServer((s) => {
      peer = s;
      resolve();
    }).listen(0, '127.0.0.1');
  });
  await new Promise((r) => server!.once('listening', r));
  const { port } = server!.address() as { port: number };
  client = netConnect({ host: '127.0.0.1', port, onread: reads.onread });
  reads.attach(client);
  await accepted;
  return (data) => new Promise((resolve) => peer!.write(data, () => resolve()));
}

const settle = () => new Promise((r) => setTimeout(r, 50));

describe('UpstreamReads', () => {
  it('emits copies as data events until a reader is lent', async () => {
    const reads = new UpstreamReads();
    const send = await pair(reads);
    const got: Buffer[] = [];
    client!.on('data', (chunk: Buffer) => got.push(chunk));
    await send(Buffer.from('hello'));
    await settle();
    expect(Buffer.concat(got).toString()).toBe('hello');
    await send(Buffer.from('again'));
    await settle();
    // Both arrived intact: the first was a copy, not a view of memory the second read reused.
    expect(Buffer.concat(got).toString()).toBe('helloagain');
  });

  it('lends a streaming session its own buffer, reused while the reader keeps nothing, replaced when it does', async () => {
    const reads = new UpstreamReads();
    const send = await pair(reads);
    const views: { buffer: ArrayBufferLike; first: number; length: number }[] = [];
    let keep = false;
    reads.lend((view) => {
      views.push({ buffer: view.buffer, first: view[0]!, length: view.length });
      return keep;
    });
    const big = (fill: number) => Buffer.alloc(40 * 1024, fill);
    // The first large read lands in the shared buffer (a copy); it starts the streaming.
    for (const fill of [1, 2, 3]) {
      await send(big(fill));
      await settle();
    }
    const own = views.filter((v) => v.length >= 16 * 1024).slice(1);
    expect(own.length).toBeGreaterThanOrEqual(2);
    // Not kept: the next read reuses the same memory.
    expect(own[1]!.buffer).toBe(own[0]!.buffer);
    keep = true;
    await send(big(4));
    await settle();
    const kept = views.at(-1)!;
    keep = false;
    await send(big(5));
    await settle();
    // Kept: the next read went elsewhere, and what the reader kept still holds its bytes.
    const after = views.at(-1)!;
    expect(after.buffer).not.toBe(kept.buffer);
    expect(new Uint8Array(kept.buffer)[0]).not.toBe(5);
  });

  it('hands small reads over as copies and lets the session buffer go: an idle session holds none', async () => {
    const reads = new UpstreamReads();
    const send = await pair(reads);
    const seen: Buffer[] = [];
    reads.lend((view) => {
      seen.push(view);
      return false;
    });
    await send(Buffer.alloc(40 * 1024, 7));
    await settle();
    await send(Buffer.from('small'));
    await settle();
    await send(Buffer.from('reply'));
    await settle();
    // Small reads are copies the reader may keep: later reads never overwrite them.
    const small = seen.filter((b) => b.length < 1024).map((b) => b.toString());
    expect(small).toEqual(['small', 'reply']);
    expect((reads as unknown as { own?: Buffer }).own).toBeUndefined();
  });
});

describe('which client streams may get a lent read buffer back at once', () => {
  it('sockets and streams marked as counting what they hold; never any other stream', () => {
    expect(countsHeldWrites(new Socket())).toBe(true);
    // A PassThrough acknowledges a write while its reader still holds the very chunk.
    expect(countsHeldWrites(new PassThrough())).toBe(false);
    const marked = new PassThrough();
    markCountsHeldWrites(marked);
    expect(countsHeldWrites(marked)).toBe(true);
  });
});
