/**
 * What built-in functions (pg_catalog, information_schema) do, for classification. Immutable and stable
 * built-ins only read. Volatile ones are listed here by what they change; a volatile built-in that is in
 * no list is treated as a write (it may change something), so a new server version fails safe.
 * docs/policy.md lists these; keep the two together.
 */
import { compileGlobs } from './glob.js';

/** Built-ins that change data: a SELECT calling one is class `write`. */
export const WRITING_FUNCTIONS = [
  'nextval',
  'setval',
  'pg_notify',
  'lo_create',
  'lo_creat',
  'lo_unlink',
  'lo_put',
  'lo_from_bytea',
  'lo_truncate',
  'lo_truncate64',
  'lowrite',
  'pg_logical_emit_message', // writes a message into the WAL for logical decoding
] as const;

/** Built-ins that administer the server (maintenance, backups, statistics, upgrades): class `admin`. */
export const ADMIN_FUNCTIONS = [
  'pg_backup_start',
  'pg_backup_stop',
  'pg_stat_reset*',
  'brin_summarize_*',
  'brin_desummarize_range',
  'gin_clean_pending_list',
  'binary_upgrade_*',
  'pg_nextoid',
  'pg_import_system_collations',
  'pg_stop_making_pinned_objects',
  'pg_wal_replay_pause',
  'pg_wal_replay_resume',
  'pg_extension_config_dump',
] as const;

/**
 * Volatile built-ins that only read, or change nothing but this session's private state (a random seed,
 * advisory locks other sessions only meet if they ask for the same number, a snapshot export): reads.
 */
export const READING_VOLATILE_FUNCTIONS = [
  'random',
  'setseed',
  'clock_timestamp',
  'timeofday',
  'gen_random_uuid',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'currval',
  'lastval',
  'current_query',
  'currtid2',
  'txid_status',
  'pg_xact_status',
  'pg_xact_commit_timestamp',
  'pg_xact_commit_timestamp_origin',
  'pg_last_committed_xact',
  'pg_export_snapshot',
  'pg_is_in_recovery',
  'pg_is_wal_replay_paused',
  'pg_get_wal_replay_pause_state',
  'pg_jit_available',
  'pg_current_wal_lsn',
  'pg_current_wal_insert_lsn',
  'pg_current_wal_flush_lsn',
  'pg_last_wal_receive_lsn',
  'pg_last_wal_replay_lsn',
  'pg_last_xact_replay_timestamp',
  'pg_notification_queue_usage',
  'pg_relation_size',
  'pg_table_size',
  'pg_total_relation_size',
  'pg_indexes_size',
  'pg_database_size',
  'pg_tablespace_size',
  'pg_sequence_last_value',
  'pg_blocking_pids',
  'pg_safe_snapshot_blocking_pids',
  'pg_isolation_test_session_is_blocked',
  'pg_collation_actual_version',
  'pg_database_collation_actual_version',
  'pg_control_checkpoint',
  'pg_control_init',
  'pg_control_recovery',
  'pg_control_system',
  'pg_current_logfile',
  'pg_stat_clear_snapshot',
  'pg_stat_force_next_flush',
  'pg_stat_get_xact_*',
  'pg_stat_have_stats',
  'pg_lock_status',
  'pg_prepared_xact',
  'pg_get_backend_memory_contexts',
  'pg_get_shmem_allocations',
  'pg_get_multixact_members',
  'pg_get_wal_resource_managers',
  'pg_partition_tree',
  'pg_partition_ancestors',
  'pg_show_all_file_settings',
  'pg_hba_file_rules',
  'pg_ident_file_mappings',
  'pg_show_replication_origin_status',
  'pg_stat_get_recovery_prefetch',
  'pg_advisory_lock*',
  'pg_advisory_unlock*',
  'pg_advisory_xact_lock*',
  'pg_try_advisory_*',
  'lo_open',
  'lo_close',
  'lo_get',
  'loread',
  'lo_lseek',
  'lo_lseek64',
  'lo_tell',
  'lo_tell64',
  'amvalidate',
] as const;

/** Functions that set a server setting, like SET: they obey SET's rules (class `session`). */
export const SETTING_FUNCTIONS = ['set_config'] as const;

const writing = compileGlobs(WRITING_FUNCTIONS);
const admin = compileGlobs(ADMIN_FUNCTIONS);
const readingVolatile = compileGlobs(READING_VOLATILE_FUNCTIONS);

export type BuiltinEffect = 'read' | 'session' | 'write' | 'admin';

const effects = new Map<string, BuiltinEffect>();

/** What a built-in does, by its name and volatility (`v` when not known). */
export function builtinEffect(name: string, volatility: 'i' | 's' | 'v' = 'v'): BuiltinEffect {
  const key = `${volatility}${name}`;
  let effect = effects.get(key);
  if (effect === undefined) {
    if (effects.size > 10_000) effects.clear();
    effect = computeEffect(name.toLowerCase(), volatility);
    effects.set(key, effect);
  }
  return effect;
}

function computeEffect(bare: string, volatility: 'i' | 's' | 'v'): BuiltinEffect {
  if (bare === 'set_config') return 'session';
  if (writing(bare)) return 'write';
  if (admin(bare)) return 'admin';
  if (volatility !== 'v' || readingVolatile(bare)) return 'read';
  return 'write';
}

/**
 * Built-ins that change the sequence their first argument names (a regclass, usually written as text):
 * the classifier takes a constant one as the relation they write (syntax.ts).
 */
export const SEQUENCE_WRITING_FUNCTIONS = new Set(['nextval', 'setval']);

/**
 * A built-in of this effect changes something no relation of the statement names (a large object, a
 * notification channel, the server's statistics). Sequence functions name theirs in an argument.
 */
export function changesUnnamed(effect: BuiltinEffect, name: string): boolean {
  return (effect === 'write' || effect === 'admin') && !SEQUENCE_WRITING_FUNCTIONS.has(name.toLowerCase());
}

export function isWritingBuiltin(name: string): boolean {
  return writing(name.toLowerCase());
}
