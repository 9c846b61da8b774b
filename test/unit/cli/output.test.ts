/** The CLI's output rules: colour, spinners, JSON field selection, which command module a line needs. */
import { describe, expect, it } from 'vitest';
import { commandWord } from '../../../src/cli/main.js';
import { canSpin, colourWanted, palette, printable, selectFields } from '../../../src/cli/output.js';

describe('colour', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  it('on a TTY, off in a pipe, NO_COLOR off, FORCE_COLOR on (and FORCE_COLOR=0 off)', () => {
    expect(colourWanted(tty, {})).toBe(true);
    expect(colourWanted(pipe, {})).toBe(false);
    expect(colourWanted(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colourWanted(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colourWanted(tty, { FORCE_COLOR: '0' })).toBe(false);
    expect(colourWanted(tty, { NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(true);
    expect(colourWanted(tty, { TERM: 'dumb' })).toBe(false);
    expect(palette(false).bold('x')).toBe('x');
    expect(palette(true).bold('x')).toBe('\x1b[1mx\x1b[22m');
  });
});

describe('spinners', () => {
  it('only on a terminal that has a size', () => {
    expect(canSpin({ isTTY: true, columns: 80, rows: 24 })).toBe(true);
    expect(canSpin({ isTTY: true, columns: 0, rows: 0 })).toBe(false);
    expect(canSpin({ isTTY: true, columns: undefined as unknown as number, rows: 24 })).toBe(false);
    expect(canSpin({ isTTY: false, columns: 80, rows: 24 })).toBe(false);
  });
});

describe('--json field selection', () => {
  const sessions = {
    sessions: [
      { id: 'a', identity: { subject: 'alice', groups: ['x'] }, statements: 3 },
      { id: 'b', identity: { subject: 'bob', groups: [] }, statements: 0 },
    ],
  };
  it('picks fields of each item of a listing, with dotted paths', () => {
    expect(selectFields(sessions, ['id', 'identity.subject'])).toEqual({
      sessions: [
        { id: 'a', identity: { subject: 'alice' } },
        { id: 'b', identity: { subject: 'bob' } },
      ],
    });
    expect(selectFields([{ name: 'prod-db', database: 'shop' }], ['name'])).toEqual([{ name: 'prod-db' }]);
  });
  it('picks fields of a single object', () => {
    expect(selectFields({ token: 't', expires_at: 'e', gateway: 'g' }, ['expires_at'])).toEqual({
      expires_at: 'e',
    });
  });
});

describe('which command module a command line needs', () => {
  it('skips global options and their values', () => {
    expect(commandWord(['exec', 'prod-db'])).toBe('exec');
    expect(commandWord(['--profile', 'staging', 'status'])).toBe('status');
    expect(commandWord(['--help'])).toBeUndefined();
    expect(commandWord([])).toBeUndefined();
  });
});

describe('printable', () => {
  it('makes control characters and direction overrides visible, so a statement cannot redraw the line', () => {
    // What a requester put in a comment to make `hoopctl approvals` show another statement.
    const statement = "update customers set country = 'QQ' /*\r\x1b[2K      ... where id = 7; */";
    expect(printable(statement)).toBe(
      "update customers set country = 'QQ' /*\\x0d\\x1b[2K      ... where id = 7; */",
    );
    expect(printable('a\u202eb\u2066c\x7f\x9b')).toBe('a\\u202eb\\u2066c\\x7f\\x9b');
    expect(printable('line one\n\tline two — ünïcode')).toBe('line one\n\tline two — ünïcode');
  });
});
