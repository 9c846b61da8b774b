/**
 * Part of the masking check: other sessions' statement text. Every identity reaches the database as
 * the gateway's one role, so PostgreSQL shows each the text (literals included) of what the others
 * run. Without `statement_text: true` in a policy on the connection, a statement naming a source of
 * that text is analysed even for an identity with no masking rule: its text columns are redacted
 * (masking/rules.ts), and the functions returning it with other columns are refused.
 */
import type { PolicyConfig } from '../../../src/shared/config/schema.js';
import type { ClassifiedStatement } from '../../../src/shared/statement.js';
import {
  mayReadStatementText,
  STATEMENT_TEXT_FUNCTIONS,
  STATEMENT_TEXT_RELATIONS,
  STATEMENT_TEXT_RULE,
} from '../../masking/rules.js';
import { parseName } from '../../sql/names.js';

export type StatementTextNeed =
  | { deny: { index: number; rule: string; reason: string } }
  /** Some statement names a source: plan masking for it (an identity without rules gets STATEMENT_TEXT_RULES). */
  | 'mask'
  | undefined;

/** The object's own name (no schema), lower-cased; every source's name starts `pg_stat_` (cheap test first). */
const bare = (name: string) => {
  if (!name.toLowerCase().includes('pg_stat_')) return '';
  const parts = parseName(name);
  return (parts[parts.length - 1] ?? name).toLowerCase();
};

const namesSource = (s: ClassifiedStatement) =>
  s.relations.some((r) => STATEMENT_TEXT_RELATIONS.has(bare(r)));
const callsSource = (s: ClassifiedStatement) =>
  s.functions.find((f) => STATEMENT_TEXT_FUNCTIONS.has(bare(f)));
const isDdl = (s: ClassifiedStatement) => s.class === 'ddl' || (s.alsoClasses ?? []).includes('ddl');

/** `policies`: the identity's on the connection, asked for only when a statement names a source. */
export function statementTextNeed(
  statements: readonly ClassifiedStatement[],
  policies: () => readonly PolicyConfig[],
): StatementTextNeed {
  const named = statements.some(namesSource);
  const calling = statements.findIndex((s) => callsSource(s) !== undefined);
  if ((!named && calling < 0) || mayReadStatementText(policies())) return undefined;
  if (calling >= 0) {
    const reason = `${callsSource(statements[calling]!)} returns other sessions' statement text`;
    return refused(calling, reason);
  }
  // A view over the text would show it to readers that never name the source (they are not analysed).
  const ddl = statements.findIndex((s) => namesSource(s) && isDdl(s));
  if (ddl >= 0)
    return refused(ddl, "a view or table made from other sessions' statement text would pass it on");
  return 'mask';
}

function refused(index: number, why: string): StatementTextNeed {
  return {
    deny: {
      index,
      rule: STATEMENT_TEXT_RULE,
      reason: `${why}, which needs statement_text: true in a policy for this connection`,
    },
  };
}
