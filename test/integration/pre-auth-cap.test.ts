/**
 * The HTTPS listener's bound on connections that have not authenticated (listen.max_unauthenticated,
 * listen.login_timeout), as an attacker would try it: sockets that never send a request, slow headers,
 * and tunnels upgraded with a token whose startup never comes. Real gateway, TLS, WebSocket, psql.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const CAP = 4;

describe('HTTPS listener: connections not yet authenticated are capped, and have a deadline', () => {
  let stack: Stack;
  let token: string;
  let alice: string;
  const sockets: TLSSocket[] = [];
  const upgrades: WebSocket[] = [];

  beforeAll(async () => {
    stack = await startStack({ listenExtra: `  max_unauthenticated: ${CAP}\n  login_timeout: 3s` });
    alice = await stack.login('alice@example.com');
    token = (await stack.cli(alice, ['token'])).stdout.trim();
  }, 180_000);
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const w of upgrades.splice(0)) w.terminate();
    // The gateway sees the closes before the next test counts places.
    await new Promise((r) => setTimeout(r, 200));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const port = () => Number(new URL(stack.gatewayUrl).port);

  /** A TLS connection that has sent nothing (or what `send` says) and records what it receives. */
  async function idle(send = '', localAddress?: string) {
    const s = tlsConnect({
      host: '127.0.0.1',
      localAddress,
      port: port(),
      servername: 'localhost',
      ca: readFileSync(stack.certs!.caCert),
    });
    sockets.push(s);
    let received = '';
    s.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    s.on('error', () => {});
    const closed = new Promise<number>((r) => s.once('close', () => r(Date.now())));
    await new Promise((r) => s.once('secureConnect', r));
    if (send) s.write(send);
    return { received: () => received, closed };
  }

  const upgradeHead = (withToken: boolean) =>
    'GET /v1/tunnel/prod-db HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    (withToken ? `Authorization: Bearer ${token}\r\n` : '') +
    '\r\n';

  /** A tunnel upgraded with a valid token: resolves with the HTTP status of the upgrade's answer. */
  function tunnel(): Promise<{ status: number; ws: WebSocket; retryAfter?: string; body: string }> {
    const ws = new WebSocket(`${stack.gatewayUrl.replace(/^http/, 'ws')}/v1/tunnel/prod-db`, {
      headers: { authorization: `Bearer ${token}`, 'x-hoop-client': 'exec' },
      ca: readFileSync(stack.certs!.caCert),
    });
    upgrades.push(ws);
    ws.on('error', () => {});
    return new Promise((resolve) => {
      ws.once('open', () => resolve({ status: 101, ws, body: '' }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ws,
            retryAfter: res.headers['retry-after'] as string,
            body,
          }),
        );
      });
    });
  }

  it('past the cap an upgrade (valid token or not) and an API request get 503 with Retry-After', async () => {
    for (let i = 0; i < CAP; i++) await idle();
    const refused = await tunnel();
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('1');
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'unavailable' });
    expect(JSON.parse(refused.body).error.message).toMatch(/too many connections are authenticating/);

    const raw = await idle(upgradeHead(false));
    await raw.closed;
    expect(raw.received()).toMatch(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
    expect(raw.received()).toMatch(/retry-after: 1\r\n/i);

    const api = await idle('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await api.closed;
    expect(api.received()).toMatch(/^HTTP\/1\.1 503/);
  });

  it('one source holding every place cannot keep another out: the newcomer takes its oldest place', async () => {
    // Linux routes all of 127/8 to the loopback: 127.0.0.2 is another source on this machine.
    const flood = [];
    for (let i = 0; i < CAP; i++) flood.push(await idle('', '127.0.0.2'));
    const more = await idle(upgradeHead(false), '127.0.0.2');
    await more.closed;
    expect(more.received()).toMatch(/^HTTP\/1\.1 503/);

    const api = await idle('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    await api.closed;
    expect(api.received()).toMatch(/^HTTP\/1\.1 200/);
    await flood[0]!.closed;
    expect(flood[0]!.received()).toBe('');
    // The flood fills the place again; a tunnel from the newcomer's source still logs in.
    flood.push(await idle('', '127.0.0.2'));
    const conn: Tunnel = await stack.connect(alice);
    try {
      expect((await psql(conn.url, 'select 1')).trim()).toBe('1');
    } finally {
      conn.stop();
    }
    await flood[1]!.closed;
  }, 30_000);

  it('a connection that leaves gives its place back', async () => {
    const held = [];
    for (let i = 0; i < CAP; i++) held.push(await idle());
    expect((await tunnel()).status).toBe(503);
    sockets[0]!.destroy();
    await held[0]!.closed;
    await new Promise((r) => setTimeout(r, 100));
    expect((await tunnel()).status).toBe(101);
  });

  it('a socket with slow headers, and an upgraded tunnel that never logs in, are cut at login_timeout', async () => {
    const opened = Date.now();
    const slow = await idle('GET /v1/tunnel/prod-db HTTP/1.1\r\nHost: loc');
    const upgraded = await tunnel();
    expect(upgraded.status).toBe(101);
    let fatal = '';
    upgraded.ws.on('message', (d: Buffer) => {
      fatal += d.toString('latin1');
    });
    const wsClosed = new Promise<number>((r) => upgraded.ws.once('close', () => r(Date.now())));
    // While both wait, they hold places: with two more idle sockets the cap is reached.
    await idle();
    await idle();
    expect((await tunnel()).status).toBe(503);

    const [slowClosed, tunnelClosed] = await Promise.all([slow.closed, wsClosed]);
    // 3 s from connect; the bounds leave room for a loaded machine, not for the old 60 s / none.
    expect(slowClosed - opened).toBeGreaterThanOrEqual(2_500);
    expect(slowClosed - opened).toBeLessThan(10_000);
    expect(tunnelClosed - opened).toBeLessThan(10_000);
    expect(fatal).toContain('C08006');
  }, 30_000);

  it('an upgrade refused after its token was checked (no such connection) gives its place back, open socket or not', async () => {
    // A valid token (of anyone: no connection needed) asks for a tunnel the gateway refuses, and the
    // client keeps its end open: the refusal's half-close must not hold the place for ever.
    const refusedHeads = [];
    for (let i = 0; i < CAP; i++)
      refusedHeads.push(await idle(upgradeHead(true).replace('/v1/tunnel/prod-db', `/v1/tunnel/nope-${i}`)));
    await new Promise((r) => setTimeout(r, 500));
    for (const h of refusedHeads) expect(h.received()).toMatch(/^HTTP\/1\.1 404/);
    // login_timeout (3 s) later, every place is free again: a new tunnel opens.
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await tunnel()).status).toBe(101);
  }, 30_000);

  it('a request whose body is trickled counts until the body has arrived, and is cut at login_timeout', async () => {
    const opened = Date.now();
    const head =
      'POST /v1/approvals/1/approve HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n' +
      'content-length: 100000\r\n\r\n{';
    const slow = [];
    for (let i = 0; i < CAP; i++) slow.push(await idle(head));
    // A byte a second keeps Node's own requestTimeout (60 s) from firing; none of these authenticated.
    const trickle = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write(' ');
    }, 1_000);
    try {
      // The cap is full of slow bodies: the next one is refused at once.
      const extra = await idle(head);
      await extra.closed;
      expect(extra.received()).toMatch(/^HTTP\/1\.1 503/);
      expect((await tunnel()).status).toBe(503);
      // And each is cut at login_timeout (3 s from connect), not at requestTimeout.
      const closed = await Promise.all(slow.map((h) => h.closed));
      for (const at of closed) expect(at - opened).toBeLessThan(10_000);
    } finally {
      clearInterval(trickle);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect((await tunnel()).status).toBe(101);
  }, 30_000);

  it('a small API request with a body gives its place back once the body arrived', async () => {
    const posted = await idle(
      'POST /v1/approvals/1/approve HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}',
    );
    for (let i = 0; i < CAP - 1; i++) await idle();
    await new Promise((r) => setTimeout(r, 300));
    expect(posted.received()).toMatch(/^HTTP\/1\.1 401/);
    // The posted socket (kept alive) no longer counts: one more connection fits.
    expect((await tunnel()).status).toBe(101);
  });

  it('logged-in sessions do not count: more than the cap of psql sessions run together', async () => {
    const conn: Tunnel = await stack.connect(alice);
    try {
      const runs = Array.from({ length: CAP + 2 }, () => psql(conn.url, 'select pg_sleep(3)', 'select 1'));
      // All logged in and sleeping: a new tunnel is still accepted.
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await tunnel()).status).toBe(101);
      for (const r of await Promise.all(runs)) expect(r.trim().split('\n').pop()).toBe('1');
    } finally {
      conn.stop();
    }
  }, 60_000);

  it('hoopctl connect waits out a full gateway (503, Retry-After) and its client gets in', async () => {
    const conn: Tunnel = await stack.connect(alice);
    try {
      const held = [];
      for (let i = 0; i < CAP; i++) held.push(await idle());
      const run = psql(conn.url, 'select 1');
      // Refused at least once while every place is held, then let go.
      await new Promise((r) => setTimeout(r, 600));
      for (const s of sockets.splice(0)) s.destroy();
      expect((await run).trim()).toBe('1');
    } finally {
      conn.stop();
    }
  }, 60_000);
});

function psql(url: string, ...commands: string[]): Promise<string> {
  const args = ['-X', '-At', '-v', 'ON_ERROR_STOP=1', url, ...commands.flatMap((c) => ['-c', c])];
  const child = spawn('psql', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((r) => child.once('close', () => r(out)));
}
