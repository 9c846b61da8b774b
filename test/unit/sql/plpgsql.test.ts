import { beforeAll, describe, expect, it } from 'vitest';
import { isPlpgsqlParserLoaded, loadPlpgsqlParser, readPlpgsql } from '../../../gateway/sql/plpgsql.js';

const fn = (body: string) =>
  `CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN ${body} END $$`;

describe('PL/pgSQL bodies (PostgreSQL’s own PL/pgSQL parser, loaded without its protobuf module)', () => {
  beforeAll(() => loadPlpgsqlParser());

  it('loads', () => {
    expect(isPlpgsqlParserLoaded()).toBe(true);
  });

  it('finds statements, assignments (through the scanner) and expressions', () => {
    const body = readPlpgsql(
      fn('DELETE FROM audit_log; n := (SELECT count(*) FROM orders); IF n > 1 THEN PERFORM 1; END IF;'),
    );
    expect(body?.dynamic).toBe(false);
    expect(body?.statements).toEqual(
      expect.arrayContaining([
        'DELETE FROM audit_log',
        'SELECT  (SELECT count(*) FROM orders)',
        'SELECT n > 1',
      ]),
    );
  });

  it('marks SQL built at run time and transaction control', () => {
    expect(readPlpgsql(fn("EXECUTE 'drop table ' || 't';"))?.dynamic).toBe(true);
    const proc = 'CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$';
    expect(readPlpgsql(proc)?.transaction).toBe(true);
  });

  it('gives nothing for a body the parser rejects', () => {
    expect(readPlpgsql(fn('THIS IS NOT PLPGSQL;'))).toBeUndefined();
  });
});
