/**
 * The `token` mask's HMAC key: from `masking.token_secret_env` when set; otherwise generated once into
 * the store directory (0600) so tokens stay stable across restarts; with a PostgreSQL store and no
 * variable, a random key per process (tokens then differ between replicas and restarts: start-up warns).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TokenKey {
  key: Buffer;
  source: 'env' | 'file' | 'ephemeral';
  warning?: string;
}

export function loadTokenKey(
  envName: string | undefined,
  storeDir: string | undefined,
  env = process.env,
): TokenKey {
  if (envName) {
    const value = env[envName];
    if (!value) throw new Error(`masking.token_secret_env: the environment variable ${envName} is not set`);
    if (value.length < 16)
      throw new Error(`masking.token_secret_env: ${envName} must hold at least 16 characters`);
    return { key: Buffer.from(value, 'utf8'), source: 'env' };
  }
  if (storeDir) {
    const file = join(storeDir, 'masking-token.key');
    if (existsSync(file))
      return { key: Buffer.from(readFileSync(file, 'utf8').trim(), 'hex'), source: 'file' };
    mkdirSync(storeDir, { recursive: true });
    const key = randomBytes(32);
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    return { key, source: 'file' };
  }
  return {
    key: randomBytes(32),
    source: 'ephemeral',
    warning:
      'masking.token_secret_env is not set and the store is PostgreSQL: token masks change on every restart and differ between replicas',
  };
}
