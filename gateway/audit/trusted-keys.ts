/**
 * The public keys verification trusts — never the ones the store or an export lists (whoever can write
 * the store can add a key there and sign whatever they like with it). Trusted are keys under the
 * operator's control: the gateway's own signing key, the public halves of keys it rotated away from
 * (kept in its data directory), and the files `audit.trusted_keys` names (other replicas' keys, retired
 * keys kept elsewhere).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TrustedKey } from '../../src/shared/audit.js';
import { trustedKeyOf } from '../../src/shared/audit-chain.js';
import type { SigningKey } from './checkpoint.js';

/** Retired public keys rotation leaves in the data directory: audit-signing-key.<key_id>.retired.pub.pem */
const RETIRED_PUBLIC = /^audit-signing-key\.[0-9a-f]{16}\.retired\.pub\.pem$/;

/** One pinned key file: a PEM public key (a private key is refused: give its public half). */
export function readTrustedKeyFile(path: string, setting = 'audit.trusted_keys'): TrustedKey {
  const read = tryTrustedKeyFile(path);
  if ('problem' in read) throw new Error(`${setting}: ${read.problem}`);
  return read.key;
}

/** The key in a pinned key file, or why it cannot be one (the configuration check lists every such file). */
export function tryTrustedKeyFile(path: string): { key: TrustedKey } | { problem: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return {
      problem: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    };
  }
  if (/PRIVATE KEY/.test(text))
    return { problem: `${path} is a private key; pin its public half (openssl pkey -pubout)` };
  try {
    return { key: trustedKeyOf(text, path) };
  } catch (err) {
    return { problem: `${path} is not a PEM public key: ${(err as Error).message}` };
  }
}

export function loadTrustedKeys(options: {
  signingKey: SigningKey;
  dataDir: string;
  /** audit.trusted_keys, relative paths against baseDir (the configuration file's directory). */
  files?: readonly string[];
  baseDir?: string;
}): TrustedKey[] {
  const keys = new Map<string, TrustedKey>();
  const add = (key: TrustedKey) => {
    if (!keys.has(key.key_id)) keys.set(key.key_id, key);
  };
  add({
    key_id: options.signingKey.keyId,
    public_key: options.signingKey.publicKeyPem,
    source: 'signing key',
  });
  let names: string[] = [];
  try {
    names = readdirSync(options.dataDir);
  } catch {
    // no data directory yet: no retired keys
  }
  for (const name of names.filter((n) => RETIRED_PUBLIC.test(n)).sort())
    add(readTrustedKeyFile(join(options.dataDir, name), 'retired key'));
  for (const file of options.files ?? []) add(readTrustedKeyFile(resolve(options.baseDir ?? '.', file)));
  return [...keys.values()];
}
