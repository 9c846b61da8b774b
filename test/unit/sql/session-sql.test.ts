import { beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { createSessionSqlState } from '../../../gateway/sql/session-sql.js';
import type { Classification, ClassifiedStatement } from '../../../src/shared/statement.js';

beforeAll(async () => {
  await loadSqlParser();
});

const stmts = (c: Classification): ClassifiedStatement[] => {
  if (!c.ok) throw new Error(c.error);
  return c.statements;
};

/** Classify, resolve and forward one message, as the statement gate does. */
function run(session: ReturnType<typeof createSessionSqlState>, sql: string): ClassifiedStatement[] {
  const resolved = session.resolve(classify(sql));
  session.commit(resolved);
  return stmts(resolved);
}

describe('SQL-level prepared statements', () => {
  it('EXECUTE resolves to the prepared statement, with flag execute', () => {
    const session = createSessionSqlState();
    run(session, 'prepare del (int) as delete from orders where id = $1');
    const [exec] = run(session, 'execute del(1)');
    expect(exec!.class).toBe('write');
    expect(exec!.relations).toEqual(['public.orders']);
    expect(exec!.flags).toContain('execute');
    expect(exec!.flags).not.toContain('prepare');
    expect(exec!.unplaceable).toBeUndefined();
  });

  it('EXECUTE of an unknown name stays unplaceable', () => {
    const session = createSessionSqlState();
    expect(run(session, 'execute nope')[0]!.unplaceable).toBeTruthy();
  });

  it('parameters of EXECUTE add their functions and side channels', () => {
    const session = createSessionSqlState();
    run(session, 'prepare q (text) as select $1');
    const [exec] = run(session, "execute q(pg_read_file('/etc/passwd'))");
    expect(exec!.class).toBe('read');
    expect(exec!.sideChannels).toEqual(['pg_read_file']);
  });

  it('PREPARE and EXECUTE in one message resolve', () => {
    const session = createSessionSqlState();
    const [, exec] = run(session, 'prepare p as select * from t; execute p');
    expect(exec!.class).toBe('read');
    expect(exec!.unplaceable).toBeUndefined();
  });

  it('DEALLOCATE, DEALLOCATE ALL and DISCARD ALL forget', () => {
    const session = createSessionSqlState();
    run(session, 'prepare a as select 1; prepare b as select 2');
    run(session, 'deallocate a');
    expect(session.preparedNames()).toEqual(['b']);
    expect(run(session, 'execute a')[0]!.unplaceable).toBeTruthy();
    run(session, 'deallocate all');
    expect(session.preparedNames()).toEqual([]);
    run(session, 'prepare c as select 1');
    run(session, 'discard all');
    expect(session.preparedNames()).toEqual([]);
  });

  it('a second PREPARE of a known name with another statement makes it ambiguous (denied)', () => {
    const session = createSessionSqlState();
    run(session, 'prepare x as delete from t');
    run(session, 'prepare x as select 1');
    expect(run(session, 'execute x')[0]!.unplaceable).toMatch(/prepared twice/);
  });

  it('EXPLAIN ANALYZE EXECUTE takes the class and flags explain-analyze-write', () => {
    const session = createSessionSqlState();
    run(session, 'prepare d as delete from t');
    const [stmt] = run(session, 'explain analyze execute d');
    expect(stmt!.class).toBe('write');
    expect(stmt!.flags).toContain('explain-analyze-write');
  });

  it('a denied message is not committed, so its PREPARE is unknown', () => {
    const session = createSessionSqlState();
    session.resolve(classify('prepare z as delete from t')); // resolved but never forwarded
    expect(run(session, 'execute z')[0]!.unplaceable).toBeTruthy();
  });
});
