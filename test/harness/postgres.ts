/** Tests use the same throwaway-cluster code as `hoop-gateway --dev` (gateway/dev/postgres.ts). */
export { findPgBindir, type PgOptions, type PgServer, startPostgres } from '../../gateway/dev/postgres.js';
