/**
 * Every statement of the PostgreSQL 15 regression SQL through the classifier: none may throw, and each is
 * either placed in a class or refused (ok:false / unplaceable ⇒ deny). The SQL comes from Debian's
 * postgresql-15 source package: run test/fixtures/fetch-pg-regress.sh (as root) to fetch it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { effectOf } from '../../../gateway/session/protocol.js';
import { SessionModel } from '../../../gateway/session/session-model.js';
import { classifyUncached } from '../../../gateway/sql/classify.js';
import { loadSqlParser } from '../../../gateway/sql/parser.js';
import { resolveNames } from '../../../gateway/sql/session-sql.js';
import { STATEMENT_CLASSES } from '../../../src/shared/statement.js';

const dir = join(import.meta.dirname, '../../fixtures/.cache/pg-regress/sql');
const present = existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.sql'));

if (!present && !process.env.CI) {
  console.warn(
    `\n*** SKIPPING the PostgreSQL regression corpus: ${dir} is missing.\n*** Fetch it with: sudo test/fixtures/fetch-pg-regress.sh\n`,
  );
}

/**
 * Cut a regression file into pieces the parser can take: psql meta-commands (`\set`, `\gset` ...) are
 * dropped, and text accumulates until a line ends with `;` and the piece parses — or fails for a reason
 * other than being unfinished (the corpus tests syntax errors on purpose).
 */
function pieces(text: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('\\')) continue;
    current += `${line}\n`;
    if (!line.trimEnd().endsWith(';')) continue;
    const result = classifyUncached(current);
    if (!result.ok && /unterminated|end of input/i.test(result.error) && current.length < 200_000) continue;
    out.push(current);
    current = '';
  }
  if (current.trim()) out.push(current);
  return out;
}

describe.skipIf(!present && !process.env.CI)('PostgreSQL 15 regression SQL', () => {
  beforeAll(async () => {
    await loadSqlParser();
  });

  it('is present', () => {
    expect(present, `${dir} is missing: run test/fixtures/fetch-pg-regress.sh`).toBe(true);
  });

  it('classifies every statement without throwing; what it cannot place is refused', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
    const byClass = new Map<string, number>();
    let statements = 0;
    let refusedPieces = 0;
    let unplaceable = 0;
    for (const file of files) {
      // Each file runs in one session: its PREPAREs resolve its EXECUTEs.
      const model = new SessionModel();
      for (const piece of pieces(readFileSync(join(dir, file), 'utf8'))) {
        const classified = classifyUncached(piece);
        const result = resolveNames(classified, model.view(0)).classification;
        if (classified.ok)
          for (const stmt of classified.statements) {
            const effect = effectOf(stmt, model);
            if (effect) model.settle(model.expect(effect, 0), 'ok');
          }
        if (!result.ok) {
          refusedPieces++;
          continue;
        }
        for (const stmt of result.statements) {
          statements++;
          expect(STATEMENT_CLASSES).toContain(stmt.class);
          if (stmt.unplaceable) unplaceable++;
          byClass.set(stmt.class, (byClass.get(stmt.class) ?? 0) + 1);
        }
      }
    }
    const summary = [...byClass].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`);
    console.log(
      `pg-regress: ${files.length} files, ${statements} statements classified (${summary.join(', ')}); ` +
        `${unplaceable} unplaceable (denied); ${refusedPieces} pieces unparseable (denied)`,
    );
    expect(files.length).toBeGreaterThan(150);
    expect(statements).toBeGreaterThan(30_000);
  });
});
