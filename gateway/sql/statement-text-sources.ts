/**
 * Where PostgreSQL (and common extensions) show other sessions' statement text — literals included —
 * to the gateway's one role, i.e. to every identity. The one list: masking/rules.ts masks the columns,
 * the gate analyses or refuses statements naming the relations and functions, and the catalog finds
 * the views and user functions built on them. Names are bare (any schema: extensions install anywhere).
 * Not here, by design: pg_prepared_statements and pg_cursors (own session only), pg_locks and
 * pg_stat_statements_info (no text), auto_explain (writes the server log, or notices to the session
 * that ran the statement).
 */

/** Relations holding the text: reading one (or a view over one) is analysed by the masking lineage. */
export const STATEMENT_TEXT_RELATIONS: ReadonlySet<string> = new Set([
  'pg_stat_activity',
  'pg_stat_statements',
  // pg_stat_monitor: the text, the plan and the comments of each statement (older versions: errors)
  'pg_stat_monitor',
  'pg_stat_monitor_errors',
  // pg_qualstats: the constants of every predicate (constvalue), and example queries
  'pg_qualstats',
  'pg_qualstats_all',
  'pg_qualstats_by_query',
  'pg_qualstats_pretty',
  // plans print the constants of running or recorded statements
  'pg_show_plans',
  'pg_store_plans',
  'pg_stat_plans',
]);

/** Their text columns, as `schema.relation.column` globs (the rest of each view stays readable). */
export const STATEMENT_TEXT_COLUMNS: readonly string[] = [
  'pg_catalog.pg_stat_activity.query',
  '*.pg_stat_statements.query',
  '*.pg_stat_monitor.query',
  '*.pg_stat_monitor.query_plan',
  '*.pg_stat_monitor.top_query',
  '*.pg_stat_monitor.comments',
  '*.pg_stat_monitor_errors.query',
  '*.pg_stat_monitor_errors.message',
  '*.pg_qualstats*.constvalue*',
  '*.pg_show_plans.plan',
  '*.pg_store_plans.plan',
  '*.pg_stat_plans.plan',
];

/** Functions returning the text among other columns lineage cannot tell apart: refused without the allowance. */
export const STATEMENT_TEXT_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_stat_get_activity',
  'pg_stat_get_backend_activity',
  'pg_stat_statements',
  'pg_stat_monitor_internal',
  'pg_qualstats',
  'pg_qualstats_names',
  'pg_qualstats_example_query',
  'pg_qualstats_example_queries',
  'pg_show_plans',
  'pg_store_plans',
  'pg_stat_plans',
]);

/** The bare name of a function as written (`pg_catalog.pg_stat_get_activity`), lower-case. */
export function isStatementTextFunction(bareName: string): boolean {
  return STATEMENT_TEXT_FUNCTIONS.has(bareName.toLowerCase());
}
