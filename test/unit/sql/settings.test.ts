/** The settings model follows PostgreSQL's GUC rules through transactions, savepoints and errors. */
import { describe, expect, it } from 'vitest';
import {
  normalizeSettingValue,
  parseBoolean,
  SessionSettings,
  type SettingOp,
  SettingsView,
  UNKNOWN_VALUE,
} from '../../../gateway/sql/settings.js';

const START = '"$user", public';
const fresh = () => new SessionSettings(new Map([['search_path', START]]));
const set = (value: string, local = false): SettingOp => ({ op: 'set', name: 'search_path', value, local });
const path = (s: SessionSettings) => s.value('search_path');

/** Run statements as the server would report them: each completes, then ReadyForQuery. */
function run(s: SessionSettings, ...statements: (SettingOp[] | 'error')[]): void {
  for (const st of statements) {
    if (st === 'error') s.error();
    else s.executed(st);
  }
}

describe('SET, SET LOCAL, RESET through transactions', () => {
  it('a SET outside a block lasts for the session once its implicit transaction commits', () => {
    const s = fresh();
    run(s, [set('a')]);
    s.ready('I');
    expect(path(s)).toBe('a');
  });

  it('a statement error in the same implicit transaction (one Query, or before Sync) undoes it', () => {
    const s = fresh();
    run(s, [set('a')], 'error');
    s.ready('I');
    expect(path(s)).toBe(START);
  });

  it('ROLLBACK undoes SET; COMMIT keeps it; COMMIT of a failed block is a rollback', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [set('a')], [{ op: 'rollback' }]);
    s.ready('I');
    expect(path(s)).toBe(START);
    run(s, [{ op: 'begin' }], [set('b')], [{ op: 'commit' }]);
    s.ready('I');
    expect(path(s)).toBe('b');
    run(s, [{ op: 'begin' }], [set('c')], 'error', [{ op: 'commit' }]);
    s.ready('I');
    expect(path(s)).toBe('b');
  });

  it('SET LOCAL ends with its transaction; SET then SET LOCAL keeps the SET value at commit', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [set('a', true)]);
    expect(path(s)).toBe('a');
    run(s, [{ op: 'commit' }]);
    expect(path(s)).toBe(START);
    run(s, [{ op: 'begin' }], [set('b')], [set('c', true)]);
    expect(path(s)).toBe('c');
    run(s, [{ op: 'commit' }]);
    expect(path(s)).toBe('b');
    run(s, [{ op: 'begin' }], [set('d', true)], [set('e')], [{ op: 'commit' }]);
    expect(path(s)).toBe('e');
  });

  it('SET LOCAL outside a block lasts until the end of that implicit transaction only', () => {
    const s = fresh();
    run(s, [set('a', true)]);
    expect(path(s)).toBe('a'); // the rest of the same Query sees it
    s.ready('I');
    expect(path(s)).toBe(START);
  });

  it('RESET and RESET ALL return to the value the session started with', () => {
    const s = new SessionSettings(new Map([['search_path', 'app, public']]));
    run(s, [set('x')]);
    s.ready('I');
    run(s, [{ op: 'reset', name: 'search_path', local: false }]);
    s.ready('I');
    expect(path(s)).toBe('app, public');
    run(s, [set('y')], [{ op: 'reset-all' }]);
    s.ready('I');
    expect(path(s)).toBe('app, public');
  });
});

describe('savepoints', () => {
  it('ROLLBACK TO undoes what followed the savepoint, and recovers a failed block', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [set('a')], [{ op: 'savepoint', name: 'sp' }], [set('b')], 'error');
    run(s, [{ op: 'rollback-to', name: 'sp' }]);
    expect(path(s)).toBe('a');
    run(s, [set('c')], [{ op: 'commit' }]);
    s.ready('I');
    expect(path(s)).toBe('c');
  });

  it('RELEASE merges into the transaction: a released SET LOCAL still ends at commit', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [set('a')], [{ op: 'savepoint', name: 'sp' }], [set('b', true)]);
    run(s, [{ op: 'release', name: 'sp' }]);
    expect(path(s)).toBe('b');
    run(s, [{ op: 'commit' }]);
    expect(path(s)).toBe('a');
  });

  it('a SET inside a released savepoint survives the commit; the outer ROLLBACK undoes everything', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [{ op: 'savepoint', name: 'sp' }], [set('a')], [{ op: 'release', name: 'sp' }]);
    run(s, [{ op: 'commit' }]);
    expect(path(s)).toBe('a');
    run(s, [{ op: 'begin' }], [{ op: 'savepoint', name: 'sp' }], [set('b')], [{ op: 'release', name: 'sp' }]);
    run(s, [{ op: 'rollback' }]);
    expect(path(s)).toBe('a');
  });

  it('nested savepoints: rolling back to the outer one undoes both levels', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [{ op: 'savepoint', name: 'a' }], [set('x')]);
    run(s, [{ op: 'savepoint', name: 'b' }], [set('y')], [{ op: 'rollback-to', name: 'a' }]);
    expect(path(s)).toBe(START);
    run(s, [{ op: 'commit' }]);
    expect(path(s)).toBe(START);
  });
});

describe('what the model cannot see', () => {
  it('code that may call set_config makes the watched settings unknown until set again', () => {
    const s = fresh();
    run(s, [{ op: 'unknown' }]);
    s.ready('I');
    expect(path(s)).toBe(UNKNOWN_VALUE);
    run(s, [set('a')]);
    s.ready('I');
    expect(path(s)).toBe('a');
  });

  it('a set_config that may not have run leaves the old value possible too', () => {
    const s = fresh();
    run(s, [{ op: 'set', name: 'search_path', value: 'a', local: false, maybe: true }]);
    s.ready('I');
    expect(SettingsView.of(s, []).values('search_path').sort()).toEqual([START, 'a'].sort());
    run(s, [set('b')]);
    expect(SettingsView.of(s, []).values('search_path')).toEqual(['b']);
  });

  it('a block that ended without our seeing how keeps only the values commit and abort agree on', () => {
    const s = fresh();
    run(s, [{ op: 'begin' }], [set('a')]);
    s.ready('I'); // e.g. a COMMIT the gateway did not see
    expect(path(s)).toBe(UNKNOWN_VALUE);
  });

  it('statements in flight widen the view to every value they could leave', () => {
    const s = fresh();
    expect(SettingsView.of(s, []).values('search_path')).toEqual([START]);
    const view = SettingsView.of(s, [[set('a')], [{ op: 'rollback' }]]);
    expect(view.values('search_path').sort()).toEqual([START, 'a'].sort());
    // Within one message, a statement sees what the ones before it set.
    view.apply([set('b')], s);
    expect(view.values('search_path')).toEqual(['b']);
  });
});

describe('values', () => {
  it('parses booleans as the server does', () => {
    for (const v of ['on', 'ON', 'true', 't', 'yes', 'y', '1']) expect(parseBoolean(v), v).toBe(true);
    for (const v of ['off', 'of', 'false', 'f', 'no', 'n', '0']) expect(parseBoolean(v), v).toBe(false);
    for (const v of ['o', '', 'maybe', '2']) expect(parseBoolean(v), v).toBeUndefined();
  });

  it('search_path strings (set_config, startup parameters, SHOW) in one form', () => {
    expect(normalizeSettingValue('search_path', 'App,  "B c" ,public')).toBe('app, "B c", public');
    expect(normalizeSettingValue('search_path', '"$user", public')).toBe('"$user", public');
    expect(normalizeSettingValue('search_path', '')).toBe('');
    expect(normalizeSettingValue('work_mem', '64MB')).toBe('64MB');
  });
});
