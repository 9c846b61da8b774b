#!/usr/bin/env node
/**
 * The floor for any Node.js process on the data path: a TCP relay that does nothing but move bytes
 * (`pipe` both ways, no parsing, no WebSocket, no TLS). bench/run.mjs chains two of them in front of
 * PostgreSQL — the shape of `hoopctl connect` + hoop-gateway with all their work taken away — so the
 * figures show what two Node processes cost on this machine before the gateway does anything.
 *
 *   node bench/lib/node-relay.mjs <listen-port> <target-port>    (both on 127.0.0.1)
 */
import net from 'node:net';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
net
  .createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort }, () => upstream.setNoDelay(true));
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  })
  .listen(listenPort, '127.0.0.1', () => console.log(`node-relay listening on ${listenPort}`));
