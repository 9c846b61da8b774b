/** Session search: which statement records match the auditor's statement filters (pure). */
import { describe, expect, it } from 'vitest';
import { statementMatches } from '../../../gateway/audit/search.js';
import type { AuditRecord } from '../../../src/shared/audit.js';

const statement = (data: Record<string, unknown>, type: AuditRecord['type'] = 'statement'): AuditRecord => ({
  seq: 1,
  time: '2026-12-01T10:00:00.000000Z',
  type,
  data,
  prev: '',
  hash: '',
});

describe('statementMatches', () => {
  const update = statement({ decision: 'approve', class: 'write', text: 'UPDATE public.Orders SET x = 1' });

  it('needs every given filter to hold for the same statement', () => {
    expect(statementMatches(update, { decision: 'approve' })).toBe(true);
    expect(statementMatches(update, { decision: 'approve', class: 'write', text: 'orders' })).toBe(true);
    expect(statementMatches(update, { decision: 'deny', class: 'write' })).toBe(false);
    expect(statementMatches(update, { class: 'read' })).toBe(false);
    expect(statementMatches(update, { text: 'customers' })).toBe(false);
  });

  it('matches text case-insensitively and only on statement records', () => {
    expect(statementMatches(update, { text: 'SET X' })).toBe(true);
    expect(statementMatches(statement({ text: 'orders' }, 'policy.blocked'), { text: 'orders' })).toBe(false);
  });
});
