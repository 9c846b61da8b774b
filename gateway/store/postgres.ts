/**
 * The PostgreSQL store: its own database (never a proxied one), shared by several gateway replicas.
 * Durability (audit.durability): `power` keeps the server's synchronous_commit=on (a commit waits for its
 * WAL flush); `crash` (default) sets synchronous_commit=off for the store's sessions: a commit is in the
 * server's memory before it returns, so it survives the gateway's crash, not the store server's.
 * Each replica appends to its own audit chain through a writer thread with its own connection
 * (store/chain-writer.ts): replicas never wait for each other's appends.
 */
import pg from 'pg';
import type { SqlDriver, SqlExecutor } from './driver.js';

/** `?` placeholders to `$1..$n` (the store's SQL never contains a literal question mark). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function executorOf(client: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    async query<T>(sql: string, params: unknown[] = []) {
      const result = await client.query(numbered(sql), params);
      return result.rows as T[];
    },
    async run(sql: string, params: unknown[] = []) {
      const result = await client.query(numbered(sql), params);
      return result.rowCount ?? 0;
    },
  };
}

export function openPostgresDriver(
  url: string,
  options: { poolSize?: number; durability?: 'crash' | 'power' } = {},
): SqlDriver {
  const pool = new pg.Pool({
    connectionString: url,
    options: options.durability === 'power' ? undefined : '-c synchronous_commit=off',
    max: options.poolSize ?? 8,
    application_name: 'hoop-gateway store',
  });
  // An idle client losing its server must not crash the gateway; the next query reports the error.
  pool.on('error', () => {});
  const direct = executorOf(pool);
  return {
    dialect: 'postgres',
    writer: { backend: 'postgres', target: url, durability: options.durability ?? 'crash' },
    query: direct.query,
    run: direct.run,
    async transaction(fn, lock) {
      const client = await pool.connect();
      let broken = false;
      // The server can go away between two queries of the transaction: pg then emits 'error' on the
      // checked-out client, which would crash the gateway unhandled. The next query fails instead.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        if (lock !== undefined) await client.query('SELECT pg_advisory_xact_lock($1)', [lock]);
        const result = await fn(executorOf(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch {
          broken = true; // the connection itself failed: do not return it to the pool
        }
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
