import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_ALL_POLICIES } from '../harness/clients.js';
import { type Stack, startStack, type Tunnel } from '../harness/stack.js';

describe('scratch', () => {
  let stack: Stack;
  let tunnel: Tunnel;
  beforeAll(async () => {
    stack = await startStack({ policies: ALLOW_ALL_POLICIES });
    tunnel = await stack.connect(await stack.login('alice@example.com'));
  });
  afterAll(async () => {
    tunnel?.stop();
    await stack?.stop();
  });
  it('set local statement_timeout', async () => {
    for (const url of [tunnel.url]) {
      const c = new pg.Client({ connectionString: url, query_timeout: 5000 });
      await c.connect();
      await c.query('begin');
      await c.query("set local statement_timeout = '200ms'");
      const t0 = Date.now();
      const err = await c.query('select pg_sleep(2)').catch((e) => e);
      console.log('ERR', err.code, err.message, Date.now() - t0);
      const err2 = await c.query('select $1::int', [1]).catch((e) => e);
      console.log('ERR2', err2.code, err2.message);
      await c.query('rollback');
      await c.query('begin');
      await c.query("set local statement_timeout = '200ms'");
      const err3 = await c.query('select pg_sleep($1)', [2]).catch((e) => e);
      console.log('ERR3', err3.code, err3.message, Date.now() - t0);
      await c.end();
    }
    console.log(stack.gatewayLog().slice(-3000));
  });
});
