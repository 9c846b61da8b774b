/**
 * Upstream reads into reused memory (transport/upstream-reads.ts) against a real PostgreSQL: a large
 * result read by a client that keeps stopping arrives byte for byte over a client stream that cannot
 * say what it still holds — an in-memory pair, as an MCP session has, which hands each written chunk
 * on to its reader as it is. The relay must treat every lent read as kept there. (The tunnel and the
 * native listener are covered in tunnel.test.ts and native-listener.test.ts.)
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameReader } from '../../gateway/pgwire/frames.js';
import { readLargeResultSlowly } from '../harness/clients.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';
import { type SessionRig, startSessionRig } from '../harness/session-rig.js';

/** How many DataRows of LARGE_RESULT_SQL in a byte stream are intact, each checked against its own key. */
function rowsIntact(bytes: Buffer): number {
  const reader = new FrameReader(1 << 30);
  let rows = 0;
  for (const frame of reader.push(bytes)) {
    if (frame.type !== 'D') continue;
    const [g, h, pad] = columns(frame.body);
    const n = Number(g);
    const length = n % 500 === 0 ? 200000 : (n * 7) % 3001;
    const intact =
      h === createHash('md5').update(String(n)).digest('hex') &&
      pad === String.fromCharCode(65 + (n % 26)).repeat(length);
    if (intact) rows++;
  }
  return rows;
}

function columns(body: Buffer): string[] {
  const out: string[] = [];
  let at = 2;
  for (let i = body.readInt16BE(0); i > 0; i--) {
    const length = body.readInt32BE(at);
    out.push(body.toString('utf8', at + 4, at + 4 + length));
    at += 4 + length;
  }
  return out;
}

describe('upstream reads into reused memory', () => {
  let pg: PgServer;
  let rig: SessionRig;
  beforeAll(async () => {
    pg = await startPostgres();
    rig = await startSessionRig(pg);
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
    pg?.stop();
  });

  it('an in-memory client stream gets a large result byte for byte, read slowly', async () => {
    const stream = rig.inMemory() as Duplex & { setNoDelay(): void; connect(): Duplex };
    // node-postgres opens its stream itself: an in-memory one is already connected.
    stream.setNoDelay = () => {};
    stream.connect = () => {
      process.nextTick(() => stream.emit('connect'));
      return stream;
    };
    // A consumer may keep the chunks it is given (as a reader collecting a reply does): they must keep
    // their bytes after later reads.
    const kept: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => kept.push(chunk));
    const through = await readLargeResultSlowly({ stream, user: 'hoop', database: 'prod-db' });
    const expected = await readLargeResultSlowly(pg.url('postgres'));
    expect(through.length).toBe(20000);
    expect(through).toEqual(expected);
    expect(rowsIntact(Buffer.concat(kept))).toBe(20000);
  }, 120_000);
});
