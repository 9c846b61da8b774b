/** Webhook delivery against a real local HTTP server: signature, formats, retries, event filters. */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier } from '../../../gateway/approvals/notify.js';

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('notify webhooks', () => {
  let server: Server;
  let base: string;
  const received: Received[] = [];
  /** Answers per path: the first N requests fail with 503. */
  const failFirst = new Map<string, number>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        const left = failFirst.get(req.url ?? '') ?? 0;
        if (left > 0) {
          failFirst.set(req.url ?? '', left - 1);
          res.writeHead(503).end();
        } else res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const payload = {
    summary: 'alice asks to run a statement on prod-db',
    command: 'hoopctl approve 42',
    data: { id: '42', statement: 'delete from orders where id = 7' },
  };

  it('posts JSON signed with HMAC-SHA256 of the body', async () => {
    const notifier = createNotifier([{ url: `${base}/json`, secret_env: 'HOOK_SECRET', format: 'json' }], {
      env: { HOOK_SECRET: 's3cret' },
    });
    notifier.emit('approval.requested', payload);
    await notifier.idle();
    const got = received.filter((r) => r.path === '/json');
    expect(got).toHaveLength(1);
    const body = JSON.parse(got[0]!.body);
    expect(body).toMatchObject({
      event: 'approval.requested',
      summary: payload.summary,
      command: 'hoopctl approve 42',
      data: payload.data,
    });
    expect(got[0]!.headers['x-hoop-event']).toBe('approval.requested');
    const expected = `sha256=${createHmac('sha256', 's3cret').update(got[0]!.body).digest('hex')}`;
    expect(got[0]!.headers['x-hoop-signature']).toBe(expected);
  });

  it('sends a Slack-compatible payload (text and blocks), unsigned without a secret', async () => {
    const notifier = createNotifier([{ url: `${base}/slack`, format: 'slack' }]);
    notifier.emit('approval.requested', payload);
    await notifier.idle();
    const got = received.filter((r) => r.path === '/slack');
    const body = JSON.parse(got[0]!.body);
    expect(body.text).toContain(payload.summary);
    expect(body.text).toContain('hoopctl approve 42');
    expect(JSON.stringify(body.blocks)).toContain('delete from orders where id = 7');
    expect(got[0]!.headers['x-hoop-signature']).toBeUndefined();
  });

  it('retries with backoff until the receiver accepts, and gives up after the last attempt', async () => {
    failFirst.set('/flaky', 2);
    failFirst.set('/down', 100);
    const errors: string[] = [];
    const notifier = createNotifier(
      [
        { url: `${base}/flaky`, format: 'json' },
        { url: `${base}/down`, format: 'json' },
      ],
      { backoffMs: 5, attempts: 3, onError: (_url, err) => errors.push(err.message) },
    );
    notifier.emit('approval.granted', payload);
    await notifier.idle();
    expect(received.filter((r) => r.path === '/flaky')).toHaveLength(3);
    expect(received.filter((r) => r.path === '/down')).toHaveLength(3);
    expect(errors).toEqual([
      expect.stringMatching(/approval.granted not delivered after 3 attempts: answered 503/),
    ]);
  });

  it('sends only the events a webhook asks for (exact names or prefix.*)', async () => {
    const notifier = createNotifier([
      { url: `${base}/access-only`, format: 'json', events: ['access.*'] },
      { url: `${base}/requested-only`, format: 'json', events: ['approval.requested'] },
    ]);
    notifier.emit('approval.requested', payload);
    notifier.emit('approval.rejected', payload);
    notifier.emit('access.granted', payload);
    await notifier.idle();
    const events = (path: string) =>
      received.filter((r) => r.path === path).map((r) => JSON.parse(r.body).event);
    expect(events('/access-only')).toEqual(['access.granted']);
    expect(events('/requested-only')).toEqual(['approval.requested']);
  });
});
