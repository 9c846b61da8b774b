#!/usr/bin/env node
/**
 * The floor of a multiplexed two-process path: like node-relay.mjs, but the middle hop carries every
 * client connection over ONE TCP connection, as `hoopctl connect` could carry all its client
 * connections over one WebSocket. Messages of the same event-loop turn share one write on that hop.
 * A bench instrument only (no backpressure on the shared hop, no auth): bench/run.mjs uses it for
 * pgbench TPS, to test whether multiplexing could lift two Node processes above pgbouncer.
 *
 *   node bench/lib/mux-relay.mjs front <listen-port> <back-port>   clients → one shared connection
 *   node bench/lib/mux-relay.mjs back <listen-port> <target-port>   shared connection → one socket per client
 *
 * On the shared hop a frame is: stream id (uint32), length (uint32; 0xffffffff = closed), bytes.
 */
import net from 'node:net';

const [role, listenPort, targetPort] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const CLOSED = 0xffffffff;

/** Frames to one shared socket, corked per turn so that one write carries every stream's bytes. */
function framer(shared) {
  let corked = false;
  return (id, data) => {
    if (!corked) {
      corked = true;
      shared.cork();
      process.nextTick(() => {
        corked = false;
        shared.uncork();
      });
    }
    const header = Buffer.allocUnsafe(8);
    header.writeUInt32BE(id, 0);
    header.writeUInt32BE(data ? data.length : CLOSED, 4);
    shared.write(header);
    if (data) shared.write(data);
  };
}

/** Parse frames from a shared socket; `on(id, data | undefined)` per frame (undefined: closed). */
function deframer(shared, on) {
  let pending = Buffer.alloc(0);
  shared.on('data', (chunk) => {
    let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (buf.length >= 8) {
      const id = buf.readUInt32BE(0);
      const length = buf.readUInt32BE(4);
      if (length === CLOSED) {
        on(id, undefined);
        buf = buf.subarray(8);
        continue;
      }
      if (buf.length < 8 + length) break;
      on(id, buf.subarray(8, 8 + length));
      buf = buf.subarray(8 + length);
    }
    pending = buf;
  });
}

if (role === 'front') {
  const shared = net.connect({ host: '127.0.0.1', port: targetPort }, () => shared.setNoDelay(true));
  const send = framer(shared);
  const clients = new Map();
  let nextId = 1;
  deframer(shared, (id, data) => {
    const c = clients.get(id);
    if (!c) return;
    if (data) c.write(data);
    else c.destroy();
  });
  net
    .createServer((client) => {
      client.setNoDelay(true);
      const id = nextId++;
      clients.set(id, client);
      client.on('data', (d) => send(id, d));
      client.on('close', () => {
        clients.delete(id);
        send(id, undefined);
      });
      client.on('error', () => client.destroy());
    })
    .listen(listenPort, '127.0.0.1', () => console.log(`mux-relay front listening on ${listenPort}`));
} else {
  net
    .createServer((shared) => {
      shared.setNoDelay(true);
      const send = framer(shared);
      const upstreams = new Map();
      deframer(shared, (id, data) => {
        let u = upstreams.get(id);
        if (!data) {
          u?.destroy();
          upstreams.delete(id);
          return;
        }
        if (!u) {
          u = net.connect({ host: '127.0.0.1', port: targetPort }, () => u.setNoDelay(true));
          upstreams.set(id, u);
          u.on('data', (d) => send(id, d));
          u.on('close', () => {
            if (upstreams.delete(id)) send(id, undefined);
          });
          u.on('error', () => u.destroy());
        }
        u.write(data);
      });
    })
    .listen(listenPort, '127.0.0.1', () => console.log(`mux-relay back listening on ${listenPort}`));
}
