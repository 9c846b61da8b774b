/**
 * Part of the masking check: other sessions' statement text. Every identity reaches the database as
 * the gateway's one role, so PostgreSQL shows each the text (literals included) of what the others
 * run. Without `statement_text: true` in a policy on the connection, a statement naming a source of
 * that text — or a view or user function the catalog says passes it on (catalog/statement-text.ts) —
 * is analysed even for an identity with no masking rule: its text columns are redacted
 * (masking/rules.ts), values of unknown lineage masked and their predicates refused; the functions
 * returning it with other columns, and user functions reading it, are refused.
 */
import type { PolicyConfig } from '../../../src/shared/config/schema.js';
import type { ClassifiedStatement } from '../../../src/shared/statement.js';
import type { StatementTextReaders } from '../../catalog/statement-text.js';
import { mayReadStatementText, STATEMENT_TEXT_RULE } from '../../masking/rules.js';
import { parseName } from '../../sql/names.js';
import { STATEMENT_TEXT_FUNCTIONS, STATEMENT_TEXT_RELATIONS } from '../../sql/statement-text-sources.js';

export type StatementTextNeed =
  | { deny: { index: number; rule: string; reason: string } }
  /** Some statement names a source: plan masking for it (an identity without rules gets STATEMENT_TEXT_RULES). */
  | 'mask'
  | undefined;

/** Without a catalog: the sources themselves. */
export const BUILT_IN_READERS: StatementTextReaders = {
  relations: STATEMENT_TEXT_RELATIONS,
  functions: STATEMENT_TEXT_FUNCTIONS,
};

/** The object's own name (no schema), lower-cased. */
const bare = (name: string) => {
  const parts = parseName(name);
  return (parts[parts.length - 1] ?? name).toLowerCase();
};

const namesSource = (s: ClassifiedStatement, readers: StatementTextReaders) =>
  s.relations.some((r) => readers.relations.has(bare(r)));
const callsSource = (s: ClassifiedStatement, readers: StatementTextReaders) =>
  s.functions.find((f) => readers.functions.has(bare(f)));
/** DDL over a source passes it on (DROP takes it away: the DBA removing such a view is let through). */
const isDdl = (s: ClassifiedStatement) =>
  s.kind !== 'DropStmt' && (s.class === 'ddl' || (s.alsoClasses ?? []).includes('ddl'));

/** Could a catalog's readers change the answer: does some statement name a relation or call a function? */
export function namesAnything(statements: readonly ClassifiedStatement[]): boolean {
  return statements.some((s) => s.relations.length > 0 || s.functions.length > 0);
}

/**
 * `policies`: the identity's on the connection, asked for only when a statement names a source.
 * `readers`: the catalog's (views and user functions passing the text on), or the sources alone.
 */
export function statementTextNeed(
  statements: readonly ClassifiedStatement[],
  policies: () => readonly PolicyConfig[],
  readers: StatementTextReaders = BUILT_IN_READERS,
): StatementTextNeed {
  const named = statements.some((s) => namesSource(s, readers));
  const calling = statements.findIndex((s) => callsSource(s, readers) !== undefined);
  if ((!named && calling < 0) || mayReadStatementText(policies())) return undefined;
  if (calling >= 0) {
    // A user function's result is of unknown lineage: masked whole, but a predicate on it is an oracle.
    const reason = `${callsSource(statements[calling]!, readers)} returns other sessions' statement text`;
    return refused(calling, reason);
  }
  // A view over the text would show it to readers that never name the source (they are not analysed).
  const ddl = statements.findIndex((s) => namesSource(s, readers) && isDdl(s));
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
