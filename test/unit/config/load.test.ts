import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, resolveRelativePaths } from '../../../src/shared/config/load.js';

const example = readFileSync(new URL('../../../docs/examples/gateway.yaml', import.meta.url), 'utf8');

function problems(text: string): string[] {
  try {
    parseConfig(text, 'gateway.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('the configuration was accepted');
}

describe('gateway.yaml', () => {
  it('accepts the example of SPEC.md as written, with its defaults filled in', () => {
    const config = parseConfig(example, 'gateway.yaml');
    expect(config.listen.tls).toEqual({ cert: '/etc/hoop/tls.crt', key: '/etc/hoop/tls.key' });
    expect(config.identity.issuers[1]).toMatchObject({ kind: 'workload', groups: ['ci-deploy'] });
    expect(config.policies[0]!.rules[1]).toMatchObject({ approve: ['write', 'ddl'], timeout: 30 * 60_000 });
    expect(config.audit).toMatchObject({ fail_open: false, durability: 'crash' });
  });

  it('names the key and the line of each problem', () => {
    const found = problems(
      'listen: { address: "0.0.0.0:8443", insecure_loopback: true }\n' +
        'identity:\n  issuers:\n    - issuer: not-a-url\n' +
        'connections:\n  - { name: a, host: h, database: d, user: u, bogus: 1 }\n' +
        'policies:\n  - { name: p, rules: [{ name: r }] }\n',
    );
    expect(found).toEqual([
      expect.stringMatching(
        /^listen\.insecure_loopback \(line 1\): plain HTTP is refused on 0\.0\.0\.0:8443/,
      ),
      expect.stringMatching(/^identity\.issuers\[0\]\.issuer \(line 4\): /),
      'identity.issuers[0].audience (line 4): is required',
      'connections[0] (line 6): unknown key "bogus"',
      'policies[0].rules[0] (line 8): a rule has exactly one of allow, deny or approve',
    ]);
  });

  it('requires TLS when listen is left out (plain HTTP only with the explicit loopback flag)', () => {
    expect(problems('identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n')).toEqual([
      expect.stringMatching(/^listen\.tls .*is required \(or set listen\.insecure_loopback: true/),
    ]);
  });

  it('listen.postgres needs TLS, except on a loopback address with insecure_loopback', () => {
    const issuers = 'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n';
    expect(problems(`listen: { insecure_loopback: true, postgres: "0.0.0.0:5432" }\n${issuers}`)).toEqual([
      expect.stringMatching(
        /^listen\.postgres \(line 1\): the native PostgreSQL listener on 0\.0\.0\.0:5432 needs listen\.tls/,
      ),
    ]);
    const plain = parseConfig(
      `listen: { insecure_loopback: true, postgres: "127.0.0.1:6432" }\n${issuers}`,
      'g.yaml',
    );
    expect(plain.listen.postgres).toBe('127.0.0.1:6432');
    const tls = parseConfig(
      `listen: { address: "0.0.0.0:8443", tls: { cert: c, key: k }, postgres: "0.0.0.0:5432" }\n${issuers}`,
      'g.yaml',
    );
    expect(tls.listen.postgres).toBe('0.0.0.0:5432');
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problems('listen:\n  address: [\n')[0]).toMatch(/^line \d+: /);
  });

  it('resolves relative paths against the configuration file', () => {
    const config = parseConfig(
      'listen: { insecure_loopback: true }\nidentity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n' +
        'connections: [{ name: a, host: h, database: d, user: u, password_file: secrets/pw }]\n',
      'gateway.yaml',
    );
    resolveRelativePaths(config, '/etc/hoop');
    expect(config.store).toEqual({ path: '/etc/hoop/hoop-data' });
    expect(config.connections[0]!.password_file).toBe('/etc/hoop/secrets/pw');
  });
});

describe('listeners and connection names', () => {
  const issuers = 'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n';

  it('refuses a diagnostics or native listener on the address another listener takes', () => {
    expect(
      problems(
        `listen: { address: "127.0.0.1:8443", insecure_loopback: true, postgres: "localhost:8443" }\n${issuers}` +
          'diagnostics:\n  listen: "127.0.0.1:8443"\n',
      ),
    ).toEqual([
      'listen.postgres (line 1): localhost:8443 is also listen.address (127.0.0.1:8443): each listener needs a port of its own',
      'diagnostics.listen (line 4): 127.0.0.1:8443 is also listen.address (127.0.0.1:8443): each listener needs a port of its own',
    ]);
    expect(
      problems(
        `listen: { insecure_loopback: true, postgres: "127.0.0.1:6432" }\n${issuers}diagnostics: { listen: "[::]:6432" }\n`,
      ),
    ).toEqual([
      'diagnostics.listen (line 3): [::]:6432 is also listen.postgres (127.0.0.1:6432): each listener needs a port of its own',
    ]);
  });

  it('accepts listeners on distinct ports, or on one port of different hosts', () => {
    parseConfig(
      `listen: { insecure_loopback: true, postgres: "127.0.0.1:6432" }\n${issuers}diagnostics: { listen: "127.0.0.1:9090" }\n`,
      'g.yaml',
    );
    parseConfig(
      `listen: { insecure_loopback: true }\n${issuers}diagnostics: { listen: "127.0.0.2:8443" }\n`,
      'g.yaml',
    );
  });

  it('names a connection name used twice, with its line', () => {
    expect(
      problems(
        `listen: { insecure_loopback: true }\n${issuers}connections:\n` +
          '  - { name: a, host: h, database: d, user: u }\n  - { name: a, host: h2, database: d, user: u }\n',
      ),
    ).toEqual(['connections[1].name (line 5): "a" is used twice']);
  });
});
