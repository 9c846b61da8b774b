/**
 * Files the config names must be usable at start, not at the first connection or the first checkpoint:
 * each is read and parsed here as start-up will (TLS pairs, the signing key, pinned public keys), so that
 * `--check` and start give the same verdict, with every problem listed at once.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { KeyLocator } from '../../src/shared/config/load.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { keyFromPem } from '../audit/checkpoint.js';
import { tryTrustedKeyFile } from '../audit/trusted-keys.js';
import { errorCode } from './secrets.js';

type Path = (string | number)[];

export function referencedFileProblems(config: GatewayConfig, where: KeyLocator): string[] {
  const problems: string[] = [];
  const say = (path: Path, message: string) => problems.push(`${where(path)}: ${message}`);
  const read = (path: Path, file: string | undefined): Buffer | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      say(path, `cannot read ${file} (${errorCode(err)})`);
      return undefined;
    }
  };
  checkTlsPair(['listen', 'tls'], config.listen.tls, read, say);
  checkTlsPair(['diagnostics', 'tls'], config.diagnostics?.tls, read, say);
  for (const [i, c] of config.connections.entries()) read(['connections', i, 'tls', 'ca'], c.tls.ca);
  for (const [i, iss] of config.identity.issuers.entries()) read(['identity', 'issuers', i, 'ca'], iss.ca);
  const keyFile = config.audit.signing_key_file;
  const signingKey = read(['audit', 'signing_key_file'], keyFile);
  if (signingKey && keyFile) {
    try {
      keyFromPem(signingKey.toString('utf8'), keyFile);
    } catch (err) {
      say(['audit', 'signing_key_file'], (err as Error).message);
    }
  }
  config.audit.trusted_keys.forEach((file, i) => {
    const found = tryTrustedKeyFile(file);
    if ('problem' in found) say(['audit', 'trusted_keys', i], found.problem);
  });
  return problems;
}

/** A listener's cert and key: each a PEM of its kind, and the key the certificate's (as the TLS server will load them). */
function checkTlsPair(
  at: Path,
  tls: { cert: string; key: string } | undefined,
  read: (path: Path, file: string) => Buffer | undefined,
  say: (path: Path, message: string) => void,
): void {
  if (!tls) return;
  const cert = read([...at, 'cert'], tls.cert);
  const certOk = cert !== undefined && succeeds(() => createSecureContext({ cert }));
  if (cert && !certOk) say([...at, 'cert'], `${tls.cert} is not a PEM certificate`);
  const key = read([...at, 'key'], tls.key);
  const keyOk = key !== undefined && succeeds(() => createPrivateKey(key));
  if (key && !keyOk) say([...at, 'key'], `${tls.key} is not a PEM private key (or it is encrypted)`);
  if (certOk && keyOk && !succeeds(() => createSecureContext({ cert, key })))
    say([...at, 'key'], `${tls.key} is not the key of the certificate in ${at.join('.')}.cert`);
}

function succeeds(attempt: () => unknown): boolean {
  try {
    attempt();
    return true;
  } catch {
    return false;
  }
}
