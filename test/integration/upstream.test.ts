/**
 * The gateway's own login to PostgreSQL: SCRAM over verify-full TLS with a private CA, md5 over
 * `require` TLS, cleartext without TLS — and a clear error for a client when verification fails.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { type Stack, type StackOptions, startStack } from '../harness/stack.js';

function psql(url: string, sql: string) {
  return spawnSync('psql', ['-X', '-At', url, '-c', sql], { encoding: 'utf8', timeout: 30_000 });
}

describe('upstream authentication and TLS', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  const cases: [string, StackOptions, string][] = [
    [
      'SCRAM-SHA-256 over TLS verify-full',
      { pgAuth: 'scram-sha-256', pgTls: true, connectionTls: '{ mode: verify-full, ca: $CA }' },
      'on',
    ],
    ['md5 over TLS require', { pgAuth: 'md5', pgTls: true, connectionTls: '{ mode: require }' }, 'on'],
    ['cleartext password without TLS', { pgAuth: 'password', connectionTls: '{ mode: disable }' }, 'off'],
  ];
  for (const [name, options, ssl] of cases) {
    it(name, async () => {
      stack = await startStack(options);
      const tunnel = await stack.connect(await stack.login('alice@example.com'));
      const result = psql(
        tunnel.url,
        'select current_user, (select ssl from pg_stat_ssl where pid = pg_backend_pid())',
      );
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe(`hoop_gateway|${ssl === 'on' ? 't' : 'f'}`);
      tunnel.stop();
    });
  }

  it('tells the client clearly when the database certificate does not verify', async () => {
    // verify-full against the system roots: the private CA is not trusted.
    stack = await startStack({ pgTls: true, connectionTls: '{ mode: verify-full }' });
    const tunnel = await stack.connect(await stack.login('alice@example.com'));
    const result = psql(tunnel.url, 'select 1');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/TLS to the database .* failed/);
    tunnel.stop();
  });
});
