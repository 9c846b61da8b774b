/**
 * The built-in side-channel deny-list: built-in functions and statement forms that reach outside the
 * tables a policy talks about (server files, programs, other sessions, other servers, who we are).
 * A statement touching any of them is denied by the rule `builtin-deny-list` unless the allow rule that
 * matched names it in `allow_side_channels`. docs/policy.md lists them; keep the two together.
 */
import { isWritingBuiltin } from './builtins.js';
import { compileGlobs } from './glob.js';

/**
 * Functions, by bare name (any schema: `pg_catalog.pg_read_file`, `pg_read_file` and `x.pg_read_file`
 * all match, which errs on the side of denying). Globs allowed.
 */
export const SIDE_CHANNEL_FUNCTIONS = [
  // Server files
  'pg_read_file',
  'pg_read_binary_file',
  'pg_stat_file',
  'pg_ls_*', // pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir, pg_ls_archive_statusdir ...
  'pg_file_*', // adminpack: pg_file_write, pg_file_rename, pg_file_unlink ...
  'lo_import',
  'lo_export',
  // Other servers
  'dblink*',
  // Other sessions and the server itself
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_reload_conf',
  'pg_rotate_logfile',
  'pg_promote',
  'pg_switch_wal',
  'pg_create_restore_point',
  'pg_log_backend_memory_contexts',
  // Logical decoding reads every table's changes, whatever the table privileges say
  'pg_create_logical_replication_slot',
  'pg_create_physical_replication_slot',
  'pg_drop_replication_slot',
  'pg_logical_slot_*',
  'pg_replication_slot_advance',
  'pg_replication_origin_*',
  // Functions that run SQL text (or read a table named in a string) the classifier cannot see
  'query_to_xml*',
  'query_to_xmlschema',
  'table_to_xml*',
  'cursor_to_xml*',
  'schema_to_xml*',
  'database_to_xml*',
  'ts_stat',
  'ts_rewrite', // ts_rewrite(query, 'SELECT ...') runs the SQL text it is given
] as const;

/** Functions that run SQL text the classifier cannot see: the statement also gets the `dynamic-sql` flag. */
export const DYNAMIC_SQL_FUNCTIONS = [
  'dblink*',
  'query_to_xml*',
  'query_to_xmlschema',
  'cursor_to_xml*',
  'ts_stat',
  'ts_rewrite',
] as const;

/**
 * Settings that change who we are or which checks run. Setting one (SET, or set_config()) is the side
 * channel `setting:<name>` and carries the `security-setting` flag; resetting it to its default is
 * harmless and is not. (search_path is not here: the gateway follows it and resolves names through it.)
 */
export const SECURITY_SETTINGS = [
  'role',
  'session_authorization',
  'session_replication_role', // `replica` skips triggers and foreign-key checks
  'session_preload_libraries',
  'local_preload_libraries',
  'dynamic_library_path',
  'allow_system_table_mods',
  'lo_compat_privileges',
  // The gateway parses SQL assuming standard-conforming strings in UTF-8. Changing how the server
  // lexes quotes or decodes bytes would let text mean one thing to the gateway and another to Postgres.
  'standard_conforming_strings',
  'backslash_quote',
  'escape_string_warning',
  'client_encoding',
] as const;

/** Settings that change the role the session acts as (flag `set-role`). */
export const ROLE_SETTINGS = ['role', 'session_authorization'] as const;

/** Side-channel names of statement forms (not functions). */
export const COPY_PROGRAM = 'copy-program';
export const COPY_FILE = 'copy-file';
/** set_config() with a setting name computed at run time: it could be any setting. */
export const SET_CONFIG_DYNAMIC = 'set_config';
/**
 * COMMIT PREPARED / ROLLBACK PREPARED finish a two-phase transaction that *another* session prepared:
 * they make its writes permanent or throw them away, so a session allowed only `transaction` must not.
 * (PREPARE TRANSACTION of one's own transaction is not a side channel.)
 */
export const PREPARED_TRANSACTION = 'prepared-transaction';

export function settingSideChannel(setting: string): string {
  return `setting:${setting}`;
}

const sideChannelFunction = compileGlobs(SIDE_CHANNEL_FUNCTIONS);
const dynamicSqlFunction = compileGlobs(DYNAMIC_SQL_FUNCTIONS);
const securitySettings = new Set<string>(SECURITY_SETTINGS);
const roleSettings = new Set<string>(ROLE_SETTINGS);

/** `pg_catalog.pg_read_file` -> `pg_read_file`. */
export function bareName(qualified: string): string {
  return qualified.slice(qualified.lastIndexOf('.') + 1);
}

export function isSideChannelFunction(name: string): boolean {
  return sideChannelFunction(bareName(name));
}
export function isDynamicSqlFunction(name: string): boolean {
  return dynamicSqlFunction(bareName(name));
}
export function isWritingFunction(name: string): boolean {
  return isWritingBuiltin(bareName(name));
}
export function isSecuritySetting(setting: string): boolean {
  return securitySettings.has(setting.toLowerCase());
}
export function isRoleSetting(setting: string): boolean {
  return roleSettings.has(setting.toLowerCase());
}
