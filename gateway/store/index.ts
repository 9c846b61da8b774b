/** Opens the store the configuration names: an embedded SQLite file (default) or a PostgreSQL database. */
import { resolve } from 'node:path';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { migrate } from './migrations.js';
import { openPostgresDriver } from './postgres.js';
import { SqlStore } from './sql-store.js';
import { openSqliteDriver } from './sqlite.js';
import type { Store } from './types.js';

export type StoreConfig = GatewayConfig['store'];

export interface OpenStoreOptions {
  /** Relative store.path resolves against this (the configuration file's directory); default: the cwd. */
  baseDir?: string;
  /**
   * Where the gateway keeps its own files (the signing key) when the store is PostgreSQL; default
   * <baseDir>/hoop-data. With the embedded store they live in store.path.
   */
  dataDir?: string;
  /** audit.durability: `crash` (default) or `power` (fsync at every commit). */
  durability?: 'crash' | 'power';
}

/** Open and migrate. */
export async function openStore(config: StoreConfig, options: OpenStoreOptions = {}): Promise<Store> {
  const base = resolve(options.baseDir ?? '.');
  const dataDir =
    'path' in config ? resolve(base, config.path) : resolve(base, options.dataDir ?? 'hoop-data');
  const durability = options.durability ?? 'crash';
  const driver =
    'url' in config
      ? openPostgresDriver(config.url, { durability })
      : openSqliteDriver(dataDir, { durability });
  try {
    await migrate(driver);
  } catch (err) {
    await driver.close().catch(() => undefined);
    const where = 'url' in config ? 'the PostgreSQL store' : `the store at ${dataDir}`;
    throw new Error(`cannot open ${where}: ${(err as Error).message}`);
  }
  return new SqlStore(driver, dataDir);
}

export type * from './types.js';
