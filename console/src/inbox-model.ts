/**
 * The inbox's model (pure: unit-tested): items keep their place; a refresh updates the pending ones,
 * marks the ones that left, and appends new ones oldest first — so a live update never moves what the
 * reviewer is reading.
 */
import type { AccessRequestView, ApprovalView } from '../../src/shared/api.js';

export type View = ApprovalView | AccessRequestView;

export interface Item {
  view: View;
  /** Set once it left the pending list: what became of it, in one line. */
  outcome?: { text: string; tone: 'good' | 'bad' | 'neutral' };
}

export const byAge = (a: View, b: View) => Date.parse(a.created_at) - Date.parse(b.created_at);

/** Keep every item where it is; refresh the pending ones; add new ones at the end. */
export function merge(items: Item[], pending: View[]): { items: Item[]; added: View[]; left: Item[] } {
  const fresh = new Map(pending.map((v) => [v.id, v]));
  const left: Item[] = [];
  const kept = items.map((item) => {
    const view = fresh.get(item.view.id);
    if (view) return { view, ...(item.outcome ? { outcome: item.outcome } : {}) };
    if (!item.outcome) left.push(item);
    return item;
  });
  const known = new Set(items.map((i) => i.view.id));
  const added = pending.filter((v) => !known.has(v.id)).sort(byAge);
  return { items: [...kept, ...added.map((view) => ({ view }))], added, left };
}

export function outcomeOf(view: View): Item['outcome'] {
  const by =
    view.kind === 'statement'
      ? view.decisions
          .map((d) => `${d.decision === 'approve' ? 'approved' : 'rejected'} by ${d.name ?? d.subject}`)
          .join(', ')
      : view.decided_by
        ? `by ${view.decided_by}`
        : '';
  const tone =
    view.status === 'approved' || view.status === 'used'
      ? 'good'
      : view.status === 'rejected'
        ? 'bad'
        : 'neutral';
  return { text: `No longer pending: ${view.status}${by ? ` (${by})` : ''}.`, tone };
}
