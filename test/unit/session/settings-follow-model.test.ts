/**
 * The settings model follows the one session model: its transaction events (from the server's replies)
 * end SET LOCAL, undo a rolled-back SET (implicit transactions included) and the SETs after a savepoint
 * rolled back to. Driven the way the protocol core drives them: a statement's completion, then the
 * model's settle/error/ready for the same server message.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SessionModel } from '../../../gateway/session/session-model.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { SessionNames } from '../../../gateway/sql/session-names.js';
import { sessionEffectOf, type TransactionEvent } from '../../../gateway/sql/session-sql.js';
import { classifySyntax } from '../../../gateway/sql/syntax.js';

beforeAll(async () => {
  await loadSqlParser();
});

/** A session: the model publishes, the names follow; `run` plays one statement the server completed. */
function session() {
  const model = new SessionModel();
  const names = new SessionNames({ resetValues: new Map([['search_path', 'public']]), user: 'u' });
  model.onTransaction((event) => names.transaction(event));
  let id = 0;
  const run = (sql: string, outcome: 'ok' | 'failed' = 'ok') => {
    const c = classifySyntax(sql);
    if (!c.ok) throw new Error(sql);
    const { effects } = names.resolveWith(c, undefined);
    c.statements.forEach((stmt, i) => {
      const key = String(++id);
      names.forwarded([key], [effects[i]!]);
      const effect = sessionEffectOf(stmt);
      const inflight =
        effect?.kind === 'transaction'
          ? model.expect({ on: 'transaction', event: effect.event as TransactionEvent }, 0)
          : undefined;
      if (outcome === 'ok') {
        names.completed(key, { ok: true });
        if (inflight) model.settle(inflight, 'ok');
      } else {
        names.completed(key, { ok: false, skipped: false });
        model.error();
        if (inflight) model.settle(inflight, 'failed');
      }
    });
  };
  const ready = (status: 'I' | 'T' | 'E') => model.ready(status);
  const path = () => names.settings.value('search_path');
  return { run, ready, path };
}

describe('settings follow the session model', () => {
  it('a SET in a block that rolls back is undone; one that commits stays', () => {
    const s = session();
    s.run('begin');
    s.ready('T');
    s.run('set search_path = app');
    s.ready('T');
    expect(s.path()).toBe('app');
    s.run('rollback');
    s.ready('I');
    expect(s.path()).toBe('public');
    s.run('begin');
    s.run('set search_path = app');
    s.run('commit');
    s.ready('I');
    expect(s.path()).toBe('app');
  });

  it('SET LOCAL ends with its transaction; a failed implicit transaction undoes its SET', () => {
    const s = session();
    s.run('begin');
    s.run('set local search_path = app');
    expect(s.path()).toBe('app');
    s.run('commit');
    s.ready('I');
    expect(s.path()).toBe('public');
    // One Query: SET, then a statement that fails: the implicit transaction rolls back.
    s.run('set search_path = app');
    s.run('select 1/0', 'failed');
    s.ready('I');
    expect(s.path()).toBe('public');
  });

  it('ROLLBACK TO a savepoint undoes the SETs after it, and COMMIT of a failed block is a rollback', () => {
    const s = session();
    s.run('begin');
    s.run('set search_path = a');
    s.run('savepoint p');
    s.run('set search_path = b');
    s.run('rollback to p');
    expect(s.path()).toBe('a');
    s.run('select 1/0', 'failed');
    s.ready('E');
    s.run('commit'); // the server answers ROLLBACK: the model reports a rollback
    s.ready('I');
    expect(s.path()).toBe('public');
  });
});
