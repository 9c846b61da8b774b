/** listen.idle_timeout and listen.max_session end sessions with a FATAL the client can read. */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connect with node-postgres and collect the error that ends the session. */
async function client(url: string) {
  const c = new pg.Client({ connectionString: url });
  const ended = new Promise<Error>((resolve) => c.on('error', resolve));
  await c.connect();
  return { c, ended };
}

describe('session timeouts', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  beforeAll(async () => {
    stack = await startStack({ listenExtra: '  idle_timeout: 2s\n  max_session: 5s' });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });

  it('an idle session is closed with 57P05; a busy one is not', async () => {
    const busy = await client(tunnel.url);
    // A statement running longer than idle_timeout: the database is busy, not the client idle.
    await busy.c.query('select pg_sleep(2.5)');
    await busy.c.end();

    const idle = await client(tunnel.url);
    await idle.c.query('select 1');
    const error = (await idle.ended) as Error & { code?: string };
    expect(error.code).toBe('57P05');
    expect(error.message).toMatch(/idle-session timeout/);
  });

  it('any session ends at max_session with 57P01', async () => {
    const s = await client(tunnel.url);
    const started = Date.now();
    let failure: (Error & { code?: string }) | undefined;
    // Keep it busy with short statements so the idle timeout never fires.
    while (!failure && Date.now() - started < 15_000) {
      await s.c.query('select pg_sleep(0.5)').catch((err: Error) => {
        failure = err;
      });
      await sleep(10);
    }
    const ended = (await Promise.race([s.ended, sleep(2000).then(() => failure)])) as Error & {
      code?: string;
    };
    expect(ended?.code ?? failure?.code).toBe('57P01');
    expect(`${ended?.message} ${failure?.message}`).toMatch(/maximum duration|terminat/);
  });
});
