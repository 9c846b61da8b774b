/**
 * The native listener's cap on connections that have not logged in: past it a new connection gets
 * FATAL 53300 at once; one that logs in (or leaves) frees its place.
 */
import type { AddressInfo, Server, Socket } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgListener } from '../../../gateway/transport/pg-listener.js';

const startup = () => {
  const body = Buffer.from('user\0me\0database\0d\0\0');
  const header = Buffer.alloc(8);
  header.writeInt32BE(8 + body.length, 0);
  header.writeInt32BE(196608, 4);
  return Buffer.concat([header, body]);
};

describe('native listener: unauthenticated connections are capped', () => {
  let server: Server | undefined;
  const clients: Socket[] = [];
  /** A connection to the listener (from `localAddress`) that keeps what it is answered. */
  async function client(port: number, localAddress?: string) {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    clients.push(socket);
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1');
    });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => {});
    await new Promise((r) => socket.once('connect', r));
    return { socket, answer: () => answer, closed };
  }
  const handed: { loggedIn: () => void; stream: Socket }[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    for (const h of handed.splice(0)) h.stream.destroy();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  it('refuses past the cap with 53300, and counts a logged-in connection out', async () => {
    server = createPgListener({
      allowPlain: true,
      maxUnauthenticated: 2,
      onCancel: () => {},
      onConnection: (stream, meta) => {
        stream.on('data', () => {});
        handed.push({ loggedIn: meta.loggedIn, stream });
      },
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const open = async () => {
      const c = await client(port);
      c.socket.write(startup());
      return c;
    };
    const waitFor = async (check: () => boolean) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
    };

    await open();
    await open();
    await waitFor(() => handed.length === 2);
    expect(handed.length).toBe(2);
    const third = await open();
    await third.closed;
    expect(third.answer()).toContain('C53300');

    // One logs in: its place is free.
    handed[0]!.loggedIn();
    await open();
    await waitFor(() => handed.length === 3);
    expect(handed.length).toBe(3);
    // One unauthenticated leaves: its place is free too.
    const fifth = await open();
    await fifth.closed;
    expect(fifth.answer()).toContain('C53300');
    handed[1]!.stream.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await open();
    await waitFor(() => handed.length === 4);
    expect(handed.length).toBe(4);
  });

  it('one source holding every place cannot keep another out: the newcomer takes its oldest place', async () => {
    server = createPgListener({
      allowPlain: true,
      maxUnauthenticated: 3,
      onCancel: () => {},
      onConnection: (stream) => {
        stream.on('data', () => {});
        handed.push({ loggedIn: () => {}, stream });
      },
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // Linux routes all of 127/8 to the loopback: 127.0.0.2 is another source on this machine.
    const open = (localAddress: string) => client(port, localAddress);
    const flood = [await open('127.0.0.2'), await open('127.0.0.2'), await open('127.0.0.2')];
    const again = await open('127.0.0.2');
    await again.closed;
    expect(again.answer()).toContain('C53300');

    const newcomer = await open('127.0.0.1');
    let newcomerCut = false;
    void newcomer.closed.then(() => {
      newcomerCut = true;
    });
    await flood[0]!.closed; // the flood's oldest place was taken
    expect(flood[0]!.answer()).toBe('');
    // Two to one now: the flood cannot take it back, nor the newcomer's source another from it.
    for (const from of ['127.0.0.2', '127.0.0.1']) {
      const refused = await open(from);
      await refused.closed;
      expect(refused.answer()).toContain('C53300');
    }
    // A third source still may: the flood holds two, it none.
    const third = await open('127.0.0.3');
    await flood[1]!.closed;
    expect(third.answer()).toBe('');
    expect(newcomerCut).toBe(false);
  });
});
