/** The console's pure models: the session player's steps and the inbox's stable merge. */
import { describe, expect, it } from 'vitest';
import { merge } from '../../../console/src/inbox-model.js';
import { stepsOf } from '../../../console/src/steps.js';
import type { AccessRequestView, ApprovalView } from '../../../src/shared/api.js';
import type { AuditRecord } from '../../../src/shared/audit.js';

let seq = 0;
const record = (type: AuditRecord['type'], data: Record<string, unknown> = {}): AuditRecord => ({
  seq: ++seq,
  time: `2026-12-01T10:00:${String(seq).padStart(2, '0')}.000000Z`,
  type,
  session: 's1',
  data,
  prev: '',
  hash: '',
});

describe('stepsOf', () => {
  it('joins outcomes and refusals to their statement, and puts a held statement’s outcome after its approval', () => {
    const steps = stepsOf([
      record('session.started', { client: 'connect' }),
      record('statement', { statement_id: 'a', decision: 'allow', text: 'select 1' }),
      record('statement.result', { statement_id: 'a', tag: 'SELECT 1' }),
      record('statement', { statement_id: 'b', decision: 'deny', text: 'drop table t' }),
      record('policy.blocked', { statement_id: 'b', reason: 'no' }),
      record('statement', { statement_id: 'c', decision: 'approve', text: 'update t set x = 1' }),
      record('approval.requested', { approval_id: 1, statement_id: 'c' }),
      record('approval.granted', { approval_id: 1, statement_id: 'c' }),
      record('statement.result', { statement_id: 'c', tag: 'UPDATE 1' }),
      record('mcp.tool' as AuditRecord['type'], { tool: 'query' }),
      record('session.ended'),
    ]);
    expect(steps.map((s) => s.record.type)).toEqual([
      'session.started',
      'statement',
      'statement',
      'statement',
      'approval.requested',
      'approval.granted',
      'statement.result',
      'mcp.tool',
      'session.ended',
    ]);
    expect(steps[1]!.result?.tag).toBe('SELECT 1');
    expect(steps[2]!.blocked?.data.reason).toBe('no');
    expect(steps[3]!.result).toBeUndefined();
    expect(steps[6]!.ranAfterApproval?.data.statement_id).toBe('c');
  });
});

const view = (id: string, created: string): ApprovalView | AccessRequestView =>
  ({ id, kind: 'statement', created_at: created }) as ApprovalView;

describe('merge', () => {
  it('keeps items in place, marks the ones that left, appends new ones oldest first', () => {
    const first = [{ view: view('1', '2026-12-01T10:00:00Z') }, { view: view('2', '2026-12-01T10:01:00Z') }];
    const { items, added, left } = merge(first, [
      view('4', '2026-12-01T10:04:00Z'),
      view('2', '2026-12-01T10:01:00Z'),
      view('3', '2026-12-01T10:03:00Z'),
    ]);
    expect(items.map((i) => i.view.id)).toEqual(['1', '2', '3', '4']);
    expect(added.map((v) => v.id)).toEqual(['3', '4']);
    expect(left.map((i) => i.view.id)).toEqual(['1']);
    // An item already marked decided is not reported as leaving again.
    const marked = items.map((i) =>
      i.view.id === '1' ? { ...i, outcome: { text: 'x', tone: 'good' as const } } : i,
    );
    expect(merge(marked, []).left.map((i) => i.view.id)).toEqual(['2', '3', '4']);
  });
});
