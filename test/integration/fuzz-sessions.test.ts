/**
 * A malformed message ends its own session only (issue 12, item 8), end to end: a few sessions send
 * seeded garbage — bytes before any handshake (to the tunnel and to the native listener), and after a real login, random and half-valid protocol
 * messages, bad lengths, junk types — through `hoopctl connect` to the real gateway and PostgreSQL,
 * while one healthy session keeps querying. The healthy session gets every answer, masked as policy
 * says; the gateway never crashes nor logs an unhandled error; a new session works afterwards.
 * bench/fuzz.mjs runs the pure properties at scale; this is the bounded end-to-end run.
 */
import { connect as netConnect } from 'node:net';
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { RawPg } from '../harness/raw-pg.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const SEED = Number(process.env.HOOP_FUZZ_SEED ?? 20250611);
const SSNS = ['000-12-3456', '000-98-7654', '000-45-6789', '000-11-2222', '000-33-4444'];

const POLICIES = `
policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: no-writes, deny: [write, ddl, dcl, admin, procedural, copy-in, copy-out] }
    masking:
      - { name: ssn-partial, columns: [public.customers.ssn], mask: partial }
`;

const frame = (type: string, body: Uint8Array) => {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(body.length + 4, 1);
  Buffer.from(body).copy(out, 5);
  return out;
};

/** What a garbage session sends after logging in: half-valid and invalid protocol messages. */
const garbageMessage = fc.oneof(
  fc.constantFrom(
    serialize.query('select ssn from customers'),
    serialize.query('delete from customers'),
    serialize.parse({ name: 's1', text: 'select ssn from customers' }),
    serialize.bind({ portal: 'p', statement: 's1' }),
    serialize.execute({ portal: 'p' }),
    serialize.sync(),
    serialize.flush(),
    serialize.copyData(Buffer.from('x')),
    serialize.copyDone(),
  ),
  fc
    .tuple(fc.constantFrom(...'QPBEDCSFHdcfpX\0\xff'), fc.uint8Array({ maxLength: 64 }))
    .map(([t, body]) => frame(t, body)),
  fc.integer().map((length) => {
    const b = Buffer.alloc(5);
    b.write('Q', 0, 'latin1');
    b.writeInt32BE(length, 1);
    return b;
  }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
);
const afterLogin = fc.array(garbageMessage, { minLength: 1, maxLength: 8 });
/** What a garbage session sends before any handshake. */
const beforeLogin = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ maxLength: 40 }).map((b) => {
    const out = Buffer.alloc(8 + b.length);
    out.writeInt32BE(out.length, 0);
    out.writeInt32BE(196608, 4);
    Buffer.from(b).copy(out, 8);
    return out;
  }),
);

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Send raw bytes on a fresh connection; wait until the gateway closes it, or give up and close it. */
async function rawSession(port: number, bytes: Buffer): Promise<void> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('data', () => {});
  socket.write(bytes);
  await Promise.race([closed, delay(1500)]);
  socket.destroy();
}

describe('garbage sessions beside a healthy one, through the real gateway', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  /** The native PostgreSQL listener (listen.postgres): garbage goes there too, before any TLS. */
  let nativePort: number;
  const open = () =>
    RawPg.connect({ port: tunnel.port, user: 'hoop', database: 'prod-db', password: tunnel.password });

  beforeAll(async () => {
    nativePort = await freePort();
    stack = await startStack({ policies: POLICIES, listenExtra: `  postgres: 127.0.0.1:${nativePort}` });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('garbage ends only its own session; the healthy one gets every answer, masked', async () => {
    const healthy = await open();
    const before = fc.sample(beforeLogin, { seed: SEED, numRuns: 12 });
    const after = fc.sample(afterLogin, { seed: SEED + 1, numRuns: 12 });
    let stop = false;
    /** Garbage sessions the gateway ended with a FATAL (the rest were still open after their wait). */
    let ended = 0;
    const garbage = async (worker: number) => {
      for (let i = worker; i < 12; i += 3) {
        await rawSession(tunnel.port, before[i]!);
        await rawSession(nativePort, before[i]!);
        const c = await open();
        c.socket.write(Buffer.concat(after[i]!));
        await c.until(() => c.closed, 1500).catch(() => undefined);
        if (c.closed && c.messages.some((m) => m.type === 'E' && m.body.includes('FATAL'))) ended++;
        c.socket.destroy();
      }
    };
    const answers: string[] = [];
    const queries = (async () => {
      while (!stop) {
        const out = await healthy.exchange(serialize.query('select ssn from customers order by id'));
        expect(out.map((m) => m.type).join('')).toBe('TDDDDDCZ');
        const seen = out
          .filter((m) => m.type === 'D')
          .map((m) => m.body.toString('utf8'))
          .join();
        for (const ssn of SSNS) expect(seen).not.toContain(ssn);
        answers.push(seen);
      }
    })();
    await Promise.all([garbage(0), garbage(1), garbage(2)]);
    stop = true;
    await queries;
    expect(answers.length).toBeGreaterThan(0);
    expect(ended).toBeGreaterThan(0);
    expect(healthy.closed).toBe(false);
    healthy.close();

    // The gateway is still up, and logged no crash.
    expect(stack.gatewayProcess().exitCode).toBeNull();
    expect(stack.gatewayLog()).not.toMatch(/unhandled|uncaught|XX000/i);
    const fresh = await open();
    const out = await fresh.exchange(serialize.query('select 1 as one'));
    expect(out.map((m) => m.type).join('')).toBe('TDCZ');
    fresh.close();
  });
});
