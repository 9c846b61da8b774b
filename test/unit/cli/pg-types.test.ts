/** JSON values typed from column type OIDs (exec --format json). */
import { describe, expect, it } from 'vitest';
import { converters, numeric, parseArray } from '../../../src/cli/pg-types.js';

const convert = (typeId: number, value: string | null) => converters([{ name: 'x', typeId }])[0]!(value);

describe('typed JSON values', () => {
  it('booleans, integers, floats, null', () => {
    expect(convert(16, 't')).toBe(true);
    expect(convert(16, 'f')).toBe(false);
    expect(convert(23, '42')).toBe(42);
    expect(convert(21, '-7')).toBe(-7);
    expect(convert(20, '9007199254740991')).toBe(9007199254740991);
    expect(convert(20, '9007199254740993')).toBe('9007199254740993');
    expect(convert(701, '1.25')).toBe(1.25);
    expect(convert(701, 'NaN')).toBe('NaN');
    expect(convert(700, '-Infinity')).toBe('-Infinity');
    expect(convert(23, null)).toBeNull();
  });

  it('numeric is a number only when nothing is lost', () => {
    expect(numeric('0.1')).toBe(0.1);
    expect(numeric('1.50')).toBe(1.5);
    expect(numeric('-0012.500')).toBe(-12.5);
    expect(numeric('12345678901234567890')).toBe('12345678901234567890');
    expect(numeric('0.12345678901234567890123')).toBe('0.12345678901234567890123');
    expect(numeric('NaN')).toBe('NaN');
    expect(numeric('Infinity')).toBe('Infinity');
  });

  it('json and jsonb are parsed; other types stay text', () => {
    expect(convert(3802, '{"a": [1, null]}')).toEqual({ a: [1, null] });
    expect(convert(114, '"s"')).toBe('s');
    expect(convert(25, 'text')).toBe('text');
    expect(convert(1184, '2026-12-01 12:00:00+00')).toBe('2026-12-01 12:00:00+00');
    expect(convert(2950, '7f3c2a00-0000-0000-0000-000000000000')).toBe(
      '7f3c2a00-0000-0000-0000-000000000000',
    );
  });

  it('arrays, nested and quoted', () => {
    expect(convert(1007, '{1,2,NULL}')).toEqual([1, 2, null]);
    expect(convert(1007, '{{1,2},{3,4}}')).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(convert(1009, '{a,"b c","d\\"e",NULL,"NULL"}')).toEqual(['a', 'b c', 'd"e', null, 'NULL']);
    expect(convert(1000, '{t,f}')).toEqual([true, false]);
    expect(convert(1016, '{}')).toEqual([]);
    expect(convert(1007, '[0:1]={1,2}')).toBe('[0:1]={1,2}');
    expect(parseArray('{1,2', (t) => t)).toBe('{1,2');
  });
});
