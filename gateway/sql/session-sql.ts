/**
 * SQL-level prepared statements, per session. `PREPARE x AS <stmt>` is classified as its inner statement
 * (flag `prepare`); `EXECUTE x` is unplaceable on its own, and this tracker resolves it to the inner
 * statement's classification (flag `execute`). Pure: no sockets, one instance per client session.
 *
 * The tracker learns at forward time (commit), not from the database's answer, so it must never believe
 * a name means something milder than what the database holds:
 * - a PREPARE of a name it already knows is refused by Postgres (duplicate name) — the old meaning stays;
 *   if the new text differs, the name becomes ambiguous (the first PREPARE may have failed, the second
 *   succeeded) and EXECUTE of it is denied until it is deallocated;
 * - DEALLOCATE forgets the name even if Postgres then fails it: EXECUTE of an unknown name is denied.
 */
import type { Classification, ClassifiedStatement } from '../../src/shared/statement.js';
import { type PreparedUse, preparedUseOf } from './classify.js';

/** A name's meaning: the prepared statement, or 'ambiguous' when the tracker cannot be sure. */
type Prepared = ClassifiedStatement | 'ambiguous';

export interface SessionSqlState {
  /** Resolve EXECUTE of prepared statements known to the session (or PREPAREd earlier in the same message). */
  resolve(classification: Classification): Classification;
  /** The message is being forwarded: remember its PREPAREs, forget its DEALLOCATEs. */
  commit(classification: Classification): void;
  /** Names currently known (for tests and diagnostics). */
  preparedNames(): string[];
}

export function createSessionSqlState(): SessionSqlState {
  const known = new Map<string, Prepared>();
  return {
    resolve(classification) {
      if (!classification.ok) return classification;
      // Within one message statements run in order, and a failure stops the rest: simulate on a copy.
      const simulated = new Map(known);
      const statements = classification.statements.map((stmt) => {
        const use = preparedUseOf(stmt);
        if (!use) return stmt;
        if (use.action === 'execute') {
          const prepared = simulated.get(use.name);
          return prepared ? resolveExecute(stmt, use, prepared) : stmt;
        }
        apply(simulated, use);
        return stmt;
      });
      return { ok: true, statements };
    },
    commit(classification) {
      if (!classification.ok) return;
      for (const stmt of classification.statements) {
        const use = preparedUseOf(stmt);
        if (use && use.action !== 'execute') apply(known, use);
      }
    },
    preparedNames() {
      return [...known.keys()].sort();
    },
  };
}

function apply(names: Map<string, Prepared>, use: Exclude<PreparedUse, { action: 'execute' }>): void {
  if (use.action === 'deallocate') {
    if (use.name === null) names.clear();
    else names.delete(use.name);
    return;
  }
  const existing = names.get(use.name);
  if (existing === undefined) names.set(use.name, use.statement);
  else if (existing === 'ambiguous' || existing.fingerprint !== use.statement.fingerprint) {
    names.set(use.name, 'ambiguous');
  }
}

function resolveExecute(
  execute: ClassifiedStatement,
  use: Extract<PreparedUse, { action: 'execute' }>,
  prepared: Prepared,
): ClassifiedStatement {
  if (prepared === 'ambiguous') {
    return {
      ...execute,
      unplaceable: `prepared statement "${use.name}" was prepared twice with different statements; DEALLOCATE it and PREPARE it again`,
    };
  }
  // The inner statement's class, relations and functions; the EXECUTE's own parameters add theirs.
  const flags = new Set([...prepared.flags, ...execute.flags]);
  flags.delete('prepare');
  if (use.explainAnalyze && prepared.class !== 'read') flags.add('explain-analyze-write');
  const resolved: ClassifiedStatement = {
    text: execute.text,
    class: prepared.class,
    kind: execute.kind,
    relations: union(prepared.relations, execute.relations),
    functions: union(prepared.functions, execute.functions),
    flags: [...flags].sort(),
    sideChannels: union(prepared.sideChannels, execute.sideChannels),
    fingerprint: execute.fingerprint,
  };
  if (prepared.unplaceable) resolved.unplaceable = prepared.unplaceable;
  return resolved;
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}
