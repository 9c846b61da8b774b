import { describe, expect, it } from 'vitest';
import { normaliseColumnGlob, resolveMaskRules, STATISTICS_RULE } from '../../../gateway/masking/rules.js';
import { policy } from './helpers.js';

const auditors = policy({
  name: 'auditors',
  groups: ['audit'],
  masking: [{ name: 'aud-ssn', columns: ['public.customers.ssn'], mask: 'partial' }],
});
const bots = policy({
  name: 'bots',
  groups: ['bots'],
  masking_fallback: 'deny',
  inference_guard: true,
  masking: [{ name: 'bot-ssn', columns: ['customers.*'], mask: 'redact' }],
});
const readers = policy({ name: 'readers', groups: ['x'] });
const breakGlass = policy({ name: 'break-glass', groups: ['audit'], requestable: true });

describe('masking rule precedence', () => {
  it('an identity with no masking rules is not masked (and nothing is analysed)', () => {
    expect(resolveMaskRules([readers], 'readers').active).toBe(false);
  });

  it('rules of every matching policy apply together; the mask that reveals least wins', () => {
    const rules = resolveMaskRules([auditors, bots], 'auditors');
    expect(rules.column('public.customers.ssn')).toMatchObject({
      mask: 'redact',
      rule: 'bot-ssn',
      policy: 'bots',
      guard: true,
    });
    expect(rules.column('public.customers.name')).toMatchObject({ mask: 'redact' });
    expect(rules.column('public.orders.id')).toBeUndefined();
    expect(rules.fallback).toBe('deny');
  });

  it('a policy without masking rules clears nothing', () => {
    const rules = resolveMaskRules([readers, auditors], 'readers');
    expect(rules.column('public.customers.ssn')?.mask).toBe('partial');
  });

  it('a statement allowed by a granted break-glass policy is masked by its rules alone (none: clear)', () => {
    expect(resolveMaskRules([auditors, breakGlass], 'break-glass').active).toBe(false);
    expect(resolveMaskRules([auditors, breakGlass], 'auditors').column('public.customers.ssn')?.mask).toBe(
      'partial',
    );
  });

  it('column globs: s.t.c as written, t.c in public, c in any table', () => {
    expect(normaliseColumnGlob('s.t.c')).toBe('s.t.c');
    expect(normaliseColumnGlob('t.c')).toBe('public.t.c');
    expect(normaliseColumnGlob('ssn')).toBe('*.*.ssn');
    const rules = resolveMaskRules(
      [policy({ name: 'p', masking: [{ columns: ['ssn'], mask: 'redact' }] })],
      'p',
    );
    expect(rules.column('hr.people.ssn')?.rule).toBe('p.masking[0]');
  });

  it('statistics views are redacted whenever masking applies', () => {
    const rules = resolveMaskRules([auditors], 'auditors');
    expect(rules.column('pg_catalog.pg_stats.most_common_vals')?.rule).toBe(STATISTICS_RULE);
    expect(rules.column('pg_catalog.pg_stats.histogram_bounds')?.rule).toBe(STATISTICS_RULE);
    expect(rules.column('pg_catalog.pg_stats.attname')).toBeUndefined();
  });

  it('tags map to the strictest mask configured for them', () => {
    const rules = resolveMaskRules(
      [
        policy({ name: 'a', masking: [{ name: 'a1', tags: ['pan'], mask: 'partial' }] }),
        policy({ name: 'b', masking: [{ name: 'b1', tags: ['pan', 'email'], mask: 'redact' }] }),
      ],
      'a',
    );
    expect(rules.tags.get('pan')).toEqual({ mask: 'redact', rule: 'b1' });
    expect(rules.tags.get('email')).toEqual({ mask: 'redact', rule: 'b1' });
  });
});
