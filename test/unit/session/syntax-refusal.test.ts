/**
 * A statement the gateway's parser rejects is answered as PostgreSQL answers it: the parser's message
 * and position, and — where PostgreSQL adds one — its detail, hint and SQLSTATE, which libpg-query leaves out
 * (PG 15's strings.sql showed the missing HINT lines through the gateway).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { syntaxRefusal } from '../../../gateway/session/gate/parse.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';

beforeAll(async () => {
  await loadSqlParser();
});

describe('syntaxRefusal', () => {
  it('a plain syntax error: 42601, the message and a 1-based position, no hint', () => {
    const r = syntaxRefusal('select from where');
    expect(r).toMatchObject({ sqlstate: '42601', message: 'syntax error at or near "where"', position: 13 });
    expect(r.hint).toBeUndefined();
  });

  it('a bad escape in an E string: 22025 and the scanner hint', () => {
    const r = syntaxRefusal("SELECT E'wrong: \\u061'");
    expect(r).toMatchObject({
      sqlstate: '22025',
      message: 'invalid Unicode escape',
      hint: 'Unicode escapes must be \\uXXXX or \\UXXXXXXXX.',
      position: 17,
    });
  });

  it('a bad escape in a U& string: the other hint', () => {
    const r = syntaxRefusal("SELECT U&'wrong: \\061'");
    expect(r).toMatchObject({ sqlstate: '42601', hint: 'Unicode escapes must be \\XXXX or \\+XXXXXX.' });
  });

  it('grammar errors with hints', () => {
    expect(syntaxRefusal('select 1 limit 1, 2').hint).toBe('Use separate LIMIT and OFFSET clauses.');
    expect(syntaxRefusal('drop operator @#@ (int4)').hint).toBe(
      'Use NONE to denote the missing argument of a unary operator.',
    );
    expect(syntaxRefusal("create role r unencrypted password 'x'")).toMatchObject({
      sqlstate: '0A000',
      hint: 'Remove UNENCRYPTED to store the password in encrypted form instead.',
    });
    expect(syntaxRefusal('create publication p for current_schema')).toMatchObject({
      message: 'invalid publication object list',
      detail: 'One of TABLE or TABLES IN SCHEMA must be specified before a standalone table or schema name.',
    });
    expect(syntaxRefusal('create policy p on t as foo')).toMatchObject({
      message: 'unrecognized row security option "foo"',
      hint: 'Only PERMISSIVE or RESTRICTIVE policies are supported currently.',
    });
  });
});
