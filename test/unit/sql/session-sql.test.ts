import { beforeAll, describe, expect, it } from 'vitest';
import { effectOf } from '../../../gateway/session/protocol.js';
import { SessionModel } from '../../../gateway/session/session-model.js';
import { classify } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { resolveNames } from '../../../gateway/sql/session-sql.js';
import type { Classification, ClassifiedStatement } from '../../../src/shared/statement.js';

beforeAll(async () => {
  await loadSqlParser();
});

const stmts = (c: Classification): ClassifiedStatement[] => {
  if (!c.ok) throw new Error(c.error);
  return c.statements;
};

/** Resolve one message against the session's names, then let every statement succeed, as the server would answer. */
function run(model: SessionModel, sql: string): ClassifiedStatement[] {
  const { classification } = resolveNames(classify(sql), model.view(0));
  for (const stmt of stmts(classify(sql))) {
    const effect = effectOf(stmt, model);
    if (effect) model.settle(model.expect(effect, 0), 'ok');
  }
  model.ready('I');
  return stmts(classification);
}

const names = (model: SessionModel) => [...model.snapshot().statements.keys()].sort();

describe('SQL-level prepared statements resolve through the session model', () => {
  it('EXECUTE resolves to the prepared statement, with flag execute', () => {
    const model = new SessionModel();
    run(model, 'prepare del (int) as delete from orders where id = $1');
    const [exec] = run(model, 'execute del(1)');
    expect(exec!.class).toBe('write');
    expect(exec!.relations).toEqual(['public.orders']);
    expect(exec!.flags).toContain('execute');
    expect(exec!.flags).not.toContain('prepare');
    expect(exec!.unplaceable).toBeUndefined();
  });

  it('EXECUTE of a name the session does not hold stays unplaceable (refused)', () => {
    const [exec] = run(new SessionModel(), 'execute nope');
    expect(exec!.unplaceable).toBeTruthy();
  });

  it('parameters of EXECUTE add their functions and side channels', () => {
    const model = new SessionModel();
    run(model, 'prepare q (text) as select $1');
    const [exec] = run(model, "execute q(pg_read_file('/etc/passwd'))");
    expect(exec!.class).toBe('read');
    expect(exec!.sideChannels).toEqual(['pg_read_file']);
  });

  // PG 15's regression suite (tablespace.sql): CREATE TABLE ... AS EXECUTE was refused as unplaceable.
  it('CREATE TABLE AS EXECUTE resolves to the prepared statement, as ddl', () => {
    const model = new SessionModel();
    run(model, 'prepare src (int) as select $1, ssn from customers');
    const [ctas] = run(model, 'create table copied as execute src(2)');
    expect(ctas!.unplaceable).toBeUndefined();
    expect(ctas!.class).toBe('ddl');
    expect(ctas!.relations).toEqual(['public.copied', 'public.customers']);
    expect(ctas!.flags).toEqual(expect.arrayContaining(['execute', 'select-into']));
    const [explained] = run(model, 'explain (analyze) create table copied2 as execute src(2)');
    expect(explained!.unplaceable).toBeUndefined();
    expect(explained!.class).toBe('ddl');
    expect(explained!.flags).toEqual(expect.arrayContaining(['explain-analyze-write', 'select-into']));
    run(model, 'prepare del as with d as (delete from orders returning *) select * from d');
    const [writes] = run(model, 'create table copied3 as execute del');
    expect(writes!.unplaceable).toMatch(/does not only read/);
    const [unknown] = run(new SessionModel(), 'create table copied as execute nope');
    expect(unknown!.unplaceable).toBeTruthy();
  });

  it('PREPARE and EXECUTE in one message resolve', () => {
    const [, exec] = run(new SessionModel(), 'prepare p as delete from t; execute p');
    expect(exec!.class).toBe('write');
    expect(exec!.unplaceable).toBeUndefined();
  });

  it('DEALLOCATE, DEALLOCATE ALL and DISCARD ALL forget', () => {
    const model = new SessionModel();
    run(model, 'prepare a as select 1; prepare b as select 2');
    run(model, 'deallocate a');
    expect(names(model)).toEqual(['b']);
    run(model, 'deallocate all');
    expect(names(model)).toEqual([]);
    run(model, 'prepare c as select 1');
    run(model, 'discard all');
    expect(names(model)).toEqual([]);
  });

  it('a PREPARE still in flight over a name with another definition makes it unknown (refused)', () => {
    const model = new SessionModel();
    run(model, 'prepare x as select 1');
    // DEALLOCATE x; PREPARE x AS DELETE ... forwarded in an earlier segment, not answered yet.
    const view = () => model.view(2);
    for (const stmt of stmts(classify('deallocate x; prepare x as delete from t')))
      model.expect(effectOf(stmt, model)!, 1);
    expect(view().statement('x').state).toBe('unknown');
    const { classification } = resolveNames(classify('execute x'), view());
    expect(stmts(classification)[0]!.unplaceable).toMatch(/DEALLOCATE it and PREPARE it again/);
  });

  it('EXPLAIN ANALYZE EXECUTE takes the class and flags explain-analyze-write', () => {
    const model = new SessionModel();
    run(model, 'prepare d as delete from t');
    const [stmt] = run(model, 'explain analyze execute d');
    expect(stmt!.class).toBe('write');
    expect(stmt!.flags).toContain('explain-analyze-write');
  });

  it('FETCH takes the class of what the cursor runs', () => {
    const model = new SessionModel();
    const [, , fetch] = run(
      model,
      'begin; declare c cursor for select * from orders for update; fetch 1 from c',
    );
    expect(fetch!.relations).toEqual(['public.orders']);
    expect(fetch!.flags).toContain('locking');
  });
});
