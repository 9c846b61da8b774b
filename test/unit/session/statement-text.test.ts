/**
 * Which statements the statement-text check analyses or refuses (gate/statement-text.ts): names as
 * the resolver hands them over, any schema, only without a policy that has statement_text: true.
 */
import { describe, expect, it } from 'vitest';
import { statementTextNeed } from '../../../gateway/session/gate/statement-text.js';
import type { PolicyConfig } from '../../../src/shared/config/schema.js';
import type { ClassifiedStatement } from '../../../src/shared/statement.js';

const stmt = (over: Partial<ClassifiedStatement>): ClassifiedStatement => ({
  text: 'select 1',
  class: 'read',
  kind: 'SelectStmt',
  relations: [],
  functions: [],
  flags: [],
  sideChannels: [],
  fingerprint: '0',
  ...over,
});
const none = () => [] as PolicyConfig[];
const allowed = () => [{ statement_text: true } as PolicyConfig];

describe('statement text: what is analysed, what is refused', () => {
  it('leaves statements that name no source alone, without asking for the policies', () => {
    const never = () => {
      throw new Error('policies asked for');
    };
    expect(
      statementTextNeed([stmt({ relations: ['public.orders'], functions: ['pg_catalog.lower'] })], never),
    ).toBe(undefined);
  });

  it('analyses reads of the views, in any schema; refuses the functions and DDL over the views', () => {
    expect(statementTextNeed([stmt({ relations: ['pg_catalog.pg_stat_activity'] })], none)).toBe('mask');
    expect(statementTextNeed([stmt({ relations: ['ext.pg_stat_statements'] })], none)).toBe('mask');
    const fn = statementTextNeed(
      [stmt({}), stmt({ functions: ['pg_catalog.pg_stat_get_activity'] })],
      none,
    ) as { deny: { index: number; rule: string; reason: string } };
    expect(fn.deny).toMatchObject({ index: 1, rule: 'builtin-statement-text' });
    expect(fn.deny.reason).toContain('statement_text: true');
    const view = statementTextNeed(
      [stmt({ class: 'ddl', kind: 'ViewStmt', relations: ['pg_catalog.pg_stat_activity', 'public.v'] })],
      none,
    );
    expect(view).toMatchObject({ deny: { rule: 'builtin-statement-text' } });
  });

  it('a policy with statement_text: true lifts all of it', () => {
    expect(statementTextNeed([stmt({ functions: ['pg_catalog.pg_stat_get_activity'] })], allowed)).toBe(
      undefined,
    );
    expect(statementTextNeed([stmt({ relations: ['pg_catalog.pg_stat_activity'] })], allowed)).toBe(
      undefined,
    );
  });
});
