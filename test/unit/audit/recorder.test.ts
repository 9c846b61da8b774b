import { describe, expect, it } from 'vitest';
import { ResultRecorder } from '../../../gateway/audit/recorder.js';

describe('ResultRecorder', () => {
  it('keeps every row within the bounds', () => {
    const r = new ResultRecorder({ maxRows: 10, maxBytes: 1000 });
    r.columns(['id', 'name']);
    r.row(['1', 'ann']);
    r.row(['2', null]);
    expect(r.result()).toEqual({
      columns: ['id', 'name'],
      rows: [
        ['1', 'ann'],
        ['2', null],
      ],
      truncated: false,
    });
    expect(r.rowCount).toBe(2);
    expect(r.byteCount).toBe(5);
  });

  it('stops at max_rows and says so, still counting', () => {
    const r = new ResultRecorder({ maxRows: 2, maxBytes: 1000 });
    r.columns(['n']);
    for (let i = 0; i < 5; i++) r.row([String(i)]);
    expect(r.result()).toEqual({ columns: ['n'], rows: [['0'], ['1']], truncated: true });
    expect(r.rowCount).toBe(5);
  });

  it('bounds bytes in UTF-8 and keeps a prefix only', () => {
    const r = new ResultRecorder({ maxRows: 100, maxBytes: 6 });
    r.columns(['v']);
    r.row(['éé']); // 4 bytes
    r.row(['abc']); // would make 7
    r.row(['a']); // fits, but after a gap: not kept
    expect(r.result().rows).toEqual([['éé']]);
    expect(r.result().truncated).toBe(true);
    expect(r.byteCount).toBe(8);
  });

  it('records nothing with zero bounds', () => {
    const r = new ResultRecorder({ maxRows: 0, maxBytes: 0 });
    r.row(['x']);
    expect(r.result()).toEqual({ columns: [], rows: [], truncated: true });
  });

  it('copies what it is given', () => {
    const r = new ResultRecorder({ maxRows: 5, maxBytes: 100 });
    const row = ['a'];
    r.row(row);
    row[0] = 'changed';
    expect(r.result().rows).toEqual([['a']]);
  });
});
