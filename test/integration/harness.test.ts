import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgServer, startPostgres } from '../harness/postgres.js';

describe('throwaway PostgreSQL', () => {
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(() => pg?.stop());

  it('answers SQL as the superuser', () => {
    expect(pg.psql('select 40 + 2').trim()).toBe('42');
  });
});
