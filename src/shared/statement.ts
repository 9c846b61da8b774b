/** What the gateway knows about one SQL statement, and what policy decided about it. */

export const STATEMENT_CLASSES = [
  'read',
  'write',
  'ddl',
  'dcl',
  'admin',
  'copy-out',
  'copy-in',
  'session',
  'transaction',
  'procedural',
  'utility',
] as const;
export type StatementClass = (typeof STATEMENT_CLASSES)[number];

/** Properties a rule can match on beyond the class. */
export const STATEMENT_FLAGS = [
  'data-modifying-cte', // WITH x AS (DELETE ...) SELECT ...
  'select-into', // SELECT INTO / CREATE TABLE AS
  'explain-analyze-write', // EXPLAIN ANALYZE of a statement that writes
  'dynamic-sql', // DO blocks, EXECUTE of a prepared statement, functions that run SQL text
  'copy-file', // COPY to/from a server file
  'copy-program', // COPY to/from PROGRAM
  'set-role', // SET ROLE / SET SESSION AUTHORIZATION
  'prepare', // SQL-level PREPARE
  'execute', // SQL-level EXECUTE
  'security-setting', // SET / set_config of a setting that changes who we are or what is checked
  'side-channel', // touches a built-in dangerous function (see sideChannels)
  'locking', // SELECT ... FOR UPDATE/SHARE, LOCK
  'function-write', // a function changes what the statement does not name: setval('seq'), lo_unlink, pg_notify, unreadable code
] as const;
export type StatementFlag = (typeof STATEMENT_FLAGS)[number];

export interface ClassifiedStatement {
  /** The statement's own text (one statement of a multi-statement string). */
  text: string;
  /** Its most consequential class (see alsoClasses). */
  class: StatementClass;
  /**
   * Further classes it belongs to: `select f(), * from t` where f deletes is a write that also reads.
   * Policy decides each class and the strictest verdict wins. Absent for most statements.
   */
  alsoClasses?: StatementClass[];
  /** Parser node type, e.g. SelectStmt, InsertStmt, VariableSetStmt. */
  kind: string;
  /**
   * Relations touched, resolved as the server resolves them (search_path, catalog) to `schema.name`, each
   * part quoted only when needed (`public."Secrets"`); sorted, unique. A name that may mean several
   * relations (an uncertain search_path) lists each of them.
   */
  relations: string[];
  /** Functions called, resolved the same way (`pg_catalog.lower`), or as written without a catalog. */
  functions: string[];
  flags: StatementFlag[];
  /** Names from the built-in side-channel deny-list this statement touches (e.g. pg_read_file, copy-program). */
  sideChannels: string[];
  /** SHA-256 (hex, first 16 chars) of the statement with constants removed: the same query shape, the same fingerprint. */
  fingerprint: string;
  /**
   * Set when the classifier cannot tell what this statement does (an EXECUTE of a prepared statement this
   * session has not seen, a statement type it does not know): policy denies it with rule `unplaceable`.
   */
  unplaceable?: string;
}

export type Classification = { ok: true; statements: ClassifiedStatement[] } | { ok: false; error: string };

export type DecisionAction = 'allow' | 'deny' | 'approve';

export interface Decision {
  action: DecisionAction;
  /** The policy whose rule decided, or null for the default deny / built-in deny-list. */
  policy: string | null;
  /** The rule's name; `default-deny`, `builtin-deny-list`, `unparseable` or `unplaceable` for the gateway's own refusals. */
  rule: string;
  /** One line for the person: why. */
  reason: string;
  /** For approve: who may decide, how many distinct approvers, how long to wait. */
  approvers?: string[];
  approvalsRequired?: number;
  timeoutMs?: number;
}
