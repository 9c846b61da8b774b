/**
 * Unauthenticated noise stays bounded (issue 12, item 5): a flood of requests with malformed or forged
 * bearer tokens, from many source addresses, through the real gateway over TLS. Afterwards the store holds
 * at most 2 × max_sources + 1 `auth.failed` records per window (docs/audit.md), none of them carries the
 * attacker's text, and their counts add up to every failure.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/shared/audit.js';
import { type Stack, startStack } from '../harness/stack.js';

const WINDOW_MS = 5000;
const MAX_SOURCES = 20;
const SOURCES = 60;
const REQUESTS = 2000;
const MARKER = 'ATTACKER-CHOSEN-TEXT';

describe('a flood of bad bearer tokens', () => {
  let stack: Stack;
  let agent: Agent;

  beforeAll(async () => {
    stack = await startStack({
      extraConfig: `audit:\n  auth_failures: { window: ${WINDOW_MS}ms, max_sources: ${MAX_SOURCES} }`,
    });
    agent = new Agent({ ca: readFileSync(stack.certs!.caCert), keepAlive: true, maxSockets: 16 });
  }, 120_000);
  afterAll(async () => {
    agent?.destroy();
    await stack?.stop();
  });

  /** One request from 127.0.0.<host> with a bearer token the attacker chose; resolves with the status. */
  const attempt = (host: number, token: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        `${stack.gatewayUrl}/v1/sessions`,
        { agent, localAddress: `127.0.0.${host}`, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });

  const authFailures = (): { record: AuditRecord; bytes: number }[] => {
    const db = new Database(join(stack.configFile, '..', 'hoop-data', 'hoop.db'), { readonly: true });
    try {
      return (
        db.prepare("SELECT record FROM chain_records WHERE type = 'auth.failed' ORDER BY seq").all() as {
          record: string;
        }[]
      ).map((r) => ({ record: JSON.parse(r.record) as AuditRecord, bytes: Buffer.byteLength(r.record) }));
    } finally {
      db.close();
    }
  };

  it(`${REQUESTS} bad tokens from ${SOURCES} addresses: bounded records, counted, no attacker text`, async () => {
    const started = Date.now();
    const junk = `${MARKER}.${'A'.repeat(7000)}`;
    const forged = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ iss: `https://${MARKER}.example`, sub: MARKER })).toString('base64url')}.c2ln`;
    let sent = 0;
    const worker = async () => {
      while (sent < REQUESTS) {
        const i = sent++;
        const status = await attempt(2 + (i % SOURCES), i % 2 ? junk : forged);
        expect(status).toBe(401);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const windows = Math.ceil((Date.now() - started) / WINDOW_MS) + 1;
    // Let the last window end and its counts be written.
    await new Promise((r) => setTimeout(r, WINDOW_MS * 2));

    const found = authFailures();
    const total = found.reduce((n, f) => n + Number(f.record.data.count ?? 1), 0);
    const bytes = found.reduce((n, f) => n + f.bytes, 0);
    const bound = windows * (2 * MAX_SOURCES + 1);
    console.log(
      `${REQUESTS} failed requests over ${windows} windows → ${found.length} records, ${bytes} bytes (bound ${bound} records)`,
    );
    expect(total).toBe(REQUESTS);
    expect(found.length).toBeLessThanOrEqual(bound);
    expect(bytes).toBeLessThanOrEqual(bound * 600);
    for (const { record } of found) {
      expect(JSON.stringify(record)).not.toContain(MARKER);
      expect(record.source).toMatch(/^(127\.0\.0\.\d+|\*)$/);
      expect(record.identity).toBeUndefined();
    }
    // Past max_sources, failures are counted together under source `*`.
    expect(found.some((f) => f.record.source === '*')).toBe(true);
  }, 180_000);
});
