/**
 * Which class each parser statement type belongs to, where the type alone decides. Types whose class
 * depends on their content (SELECT, COPY, EXPLAIN, ALTER TABLE, DROP, SET ...) are placed in classify.ts.
 * A type in neither place is unplaceable and therefore denied. docs/policy.md lists these; keep together.
 */
import type { StatementClass } from '../../src/shared/statement.js';

export const CLASS_BY_KIND: Readonly<Record<string, StatementClass>> = {
  // write: changes table data
  InsertStmt: 'write',
  UpdateStmt: 'write',
  DeleteStmt: 'write',
  MergeStmt: 'write',
  TruncateStmt: 'write',
  RefreshMatViewStmt: 'write',
  NotifyStmt: 'write', // delivers data to other sessions at commit

  // read
  VariableShowStmt: 'read', // SHOW
  FetchStmt: 'read', // FETCH / MOVE on an open cursor
  ClosePortalStmt: 'read', // CLOSE cursor

  // ddl: the schema of the database
  CreateStmt: 'ddl',
  CreateForeignTableStmt: 'ddl',
  ImportForeignSchemaStmt: 'ddl',
  CreateSchemaStmt: 'ddl',
  IndexStmt: 'ddl',
  ViewStmt: 'ddl',
  CreateSeqStmt: 'ddl',
  AlterSeqStmt: 'ddl',
  DefineStmt: 'ddl', // CREATE AGGREGATE / OPERATOR / TYPE / COLLATION / TEXT SEARCH ...
  CreateDomainStmt: 'ddl',
  AlterDomainStmt: 'ddl',
  CreateFunctionStmt: 'ddl',
  AlterFunctionStmt: 'ddl',
  AlterObjectSchemaStmt: 'ddl',
  AlterObjectDependsStmt: 'ddl',
  CommentStmt: 'ddl',
  CreateTrigStmt: 'ddl',
  RuleStmt: 'ddl',
  CompositeTypeStmt: 'ddl',
  CreateEnumStmt: 'ddl',
  CreateRangeStmt: 'ddl',
  AlterEnumStmt: 'ddl',
  AlterTypeStmt: 'ddl',
  CreateStatsStmt: 'ddl',
  AlterStatsStmt: 'ddl',
  CreateCastStmt: 'ddl',
  CreateConversionStmt: 'ddl',
  CreateOpClassStmt: 'ddl',
  CreateOpFamilyStmt: 'ddl',
  AlterOpFamilyStmt: 'ddl',
  AlterOperatorStmt: 'ddl',
  AlterCollationStmt: 'ddl',
  CreateTransformStmt: 'ddl',
  AlterTSDictionaryStmt: 'ddl',
  AlterTSConfigurationStmt: 'ddl',
  ReplicaIdentityStmt: 'ddl',

  // dcl: who may do what
  GrantStmt: 'dcl',
  GrantRoleStmt: 'dcl',
  AlterDefaultPrivilegesStmt: 'dcl',
  CreateRoleStmt: 'dcl', // also CREATE USER / GROUP
  AlterRoleStmt: 'dcl',
  AlterRoleSetStmt: 'dcl',
  DropRoleStmt: 'dcl',
  DropOwnedStmt: 'dcl',
  ReassignOwnedStmt: 'dcl',
  AlterOwnerStmt: 'dcl', // ALTER ... OWNER TO
  CreatePolicyStmt: 'dcl', // row-level security policies
  AlterPolicyStmt: 'dcl',
  SecLabelStmt: 'dcl',

  // admin: the server, databases, extensions, replication, maintenance
  AlterSystemStmt: 'admin',
  VacuumStmt: 'admin', // VACUUM and ANALYZE
  ClusterStmt: 'admin',
  ReindexStmt: 'admin',
  CheckPointStmt: 'admin',
  LoadStmt: 'admin', // loads a shared library
  CreatedbStmt: 'admin',
  AlterDatabaseStmt: 'admin',
  AlterDatabaseSetStmt: 'admin',
  AlterDatabaseRefreshCollStmt: 'admin',
  DropdbStmt: 'admin',
  CreateTableSpaceStmt: 'admin',
  DropTableSpaceStmt: 'admin',
  AlterTableSpaceOptionsStmt: 'admin',
  AlterTableMoveAllStmt: 'admin',
  CreateExtensionStmt: 'admin',
  AlterExtensionStmt: 'admin',
  AlterExtensionContentsStmt: 'admin',
  CreateFdwStmt: 'admin',
  AlterFdwStmt: 'admin',
  CreateForeignServerStmt: 'admin',
  AlterForeignServerStmt: 'admin',
  CreateUserMappingStmt: 'admin', // holds credentials for another server
  AlterUserMappingStmt: 'admin',
  DropUserMappingStmt: 'admin',
  CreateEventTrigStmt: 'admin',
  AlterEventTrigStmt: 'admin',
  CreatePLangStmt: 'admin',
  CreateAmStmt: 'admin',
  CreatePublicationStmt: 'admin', // publishes table data to subscribers
  AlterPublicationStmt: 'admin',
  CreateSubscriptionStmt: 'admin',
  AlterSubscriptionStmt: 'admin',
  DropSubscriptionStmt: 'admin',

  // session: this connection's settings and subscriptions
  VariableSetStmt: 'session', // SET / RESET, SET ROLE, SET SESSION AUTHORIZATION (placed in classify.ts)
  DiscardStmt: 'session',
  ListenStmt: 'session',
  UnlistenStmt: 'session',
  DeallocateStmt: 'session',

  // transaction
  TransactionStmt: 'transaction', // BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/PREPARE TRANSACTION ...
  ConstraintsSetStmt: 'transaction', // SET CONSTRAINTS

  // procedural: runs code the classifier cannot see into
  DoStmt: 'procedural',
  CallStmt: 'procedural',

  // utility
  LockStmt: 'utility', // LOCK TABLE (flag `locking`)
};

/** DROP of these object types is `admin`, like their CREATE. */
export const ADMIN_OBJECT_TYPES = new Set([
  'OBJECT_DATABASE',
  'OBJECT_TABLESPACE',
  'OBJECT_EXTENSION',
  'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_USER_MAPPING',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_LANGUAGE',
  'OBJECT_ACCESS_METHOD',
  'OBJECT_PUBLICATION',
  'OBJECT_PUBLICATION_REL',
  'OBJECT_PUBLICATION_NAMESPACE',
  'OBJECT_SUBSCRIPTION',
]);

/** DROP / RENAME of these object types is `dcl`. */
export const DCL_OBJECT_TYPES = new Set(['OBJECT_ROLE', 'OBJECT_POLICY']);

/** DROP of these names tables (or table-like relations): their names are the statement's relations. */
export const RELATION_OBJECT_TYPES = new Set([
  'OBJECT_TABLE',
  'OBJECT_VIEW',
  'OBJECT_MATVIEW',
  'OBJECT_SEQUENCE',
  'OBJECT_INDEX',
  'OBJECT_FOREIGN_TABLE',
]);

/** ALTER TABLE sub-commands that change who may see what: the statement is `dcl`. */
export const DCL_ALTER_TABLE_COMMANDS = new Set([
  'AT_ChangeOwner',
  'AT_EnableRowSecurity',
  'AT_DisableRowSecurity',
  'AT_ForceRowSecurity',
  'AT_NoForceRowSecurity',
]);
