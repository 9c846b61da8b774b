/**
 * What `--check` and start-up validate beyond the schema (gateway/config/check.ts): every file the
 * configuration names is read and parsed as start-up will use it, every secret variable is looked up,
 * and all problems come in one list naming key and line.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfigFile } from '../../../gateway/config/check.js';
import { ConfigError } from '../../../src/shared/config/load.js';
import { makeCerts, type TestCerts } from '../../harness/certs.js';

const HEAD =
  'listen: { address: "127.0.0.1:8443", insecure_loopback: true }\n' +
  'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n';

describe('configuration check: files and secrets', () => {
  let dir: string;
  let certs: TestCerts;
  let otherCerts: TestCerts;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hoop-check-'));
    certs = makeCerts();
    otherCerts = makeCerts();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(join(dir, 'signing.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'peer.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'garbage.pem'), 'not a key\n');
    writeFileSync(join(dir, 'pw'), 'secret\n');
  });
  afterAll(() => {
    for (const d of [dir, certs.dir, otherCerts.dir]) rmSync(d, { recursive: true, force: true });
  });

  function check(yaml: string, env: Record<string, string> = {}): string[] {
    const file = join(dir, `gw-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      checkConfigFile(file);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    } finally {
      for (const name of Object.keys(env)) if (saved[name] === undefined) delete process.env[name];
    }
  }

  it('accepts usable files, relative to the configuration file', () => {
    expect(
      check(
        `${HEAD}audit: { signing_key_file: signing.pem, trusted_keys: [peer.pub.pem] }\n` +
          `diagnostics: { listen: "127.0.0.1:9090", tls: { cert: ${certs.cert}, key: ${certs.key} } }\n` +
          'connections: [{ name: a, host: h, database: d, user: u, password_file: pw }]\n',
      ),
    ).toEqual([]);
  });

  it('reads and parses every audit.trusted_keys file: readable, a public key, PEM', () => {
    expect(
      check(`${HEAD}audit:\n  trusted_keys:\n    - /missing.pem\n    - signing.pem\n    - garbage.pem\n`),
    ).toEqual([
      'audit.trusted_keys[0] (line 5): cannot read /missing.pem (ENOENT)',
      `audit.trusted_keys[1] (line 6): ${join(dir, 'signing.pem')} is a private key; pin its public half (openssl pkey -pubout)`,
      expect.stringMatching(/^audit\.trusted_keys\[2\] \(line 7\): \S+garbage\.pem is not a PEM public key/),
    ]);
  });

  it('parses the signing key and each listener TLS pair as start-up loads them', () => {
    expect(
      check(
        'listen:\n  address: "127.0.0.1:8443"\n' +
          `  tls: { cert: ${certs.cert}, key: ${otherCerts.key} }\n` +
          'identity: { issuers: [{ issuer: "https://idp.example", audience: a }] }\n' +
          'audit: { signing_key_file: peer.pub.pem }\n' +
          'diagnostics:\n  listen: "127.0.0.1:9090"\n  tls: { cert: garbage.pem, key: missing.key }\n',
      ),
    ).toEqual([
      `listen.tls.key (line 3): ${otherCerts.key} is not the key of the certificate in listen.tls.cert`,
      expect.stringMatching(/^audit\.signing_key_file \(line 5\): .*peer\.pub\.pem is not a PEM private key/),
      `diagnostics.tls.cert (line 8): ${join(dir, 'garbage.pem')} is not a PEM certificate`,
      `diagnostics.tls.key (line 8): cannot read ${join(dir, 'missing.key')} (ENOENT)`,
    ]);
  });

  it('lists missing files and unset variables together, every one of them, in file order', () => {
    expect(
      check(
        `${HEAD}connections:\n` +
          '  - { name: a, host: h, database: d, user: u, password_env: HOOP_TEST_UNSET_PW }\n' +
          '  - { name: b, host: h, database: d, user: u, password_file: missing-pw }\n' +
          'notify: { webhooks: [{ url: "https://hooks.example", secret_env: HOOP_TEST_UNSET_HOOK }] }\n' +
          'audit: { trusted_keys: [/missing.pem] }\n' +
          'masking: { token_secret_env: HOOP_TEST_SHORT }\n',
        { HOOP_TEST_SHORT: 'short' },
      ),
    ).toEqual([
      'connections[0].password_env (line 4): environment variable HOOP_TEST_UNSET_PW is not set',
      `connections[1].password_file (line 5): cannot read ${join(dir, 'missing-pw')} (ENOENT)`,
      'notify.webhooks[0].secret_env (line 6): environment variable HOOP_TEST_UNSET_HOOK is not set',
      'audit.trusted_keys[0] (line 7): cannot read /missing.pem (ENOENT)',
      'masking.token_secret_env (line 8): HOOP_TEST_SHORT must hold at least 16 characters',
    ]);
  });

  it('checks HOOP_REPLICA_ID when it stands in for replica.id', () => {
    expect(check(HEAD, { HOOP_REPLICA_ID: 'no spaces please' })).toEqual([
      expect.stringMatching(/^HOOP_REPLICA_ID \(for replica\.id\): replica id "no spaces please" must be/),
    ]);
  });
});
