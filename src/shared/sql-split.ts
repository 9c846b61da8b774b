/**
 * Split a SQL script into its statements with the real PostgreSQL parser (libpg-query, WASM),
 * so `hoopctl exec -f` runs and reports statement by statement as psql does. Text the parser
 * rejects is returned whole: the gateway will refuse it with the parser's message.
 */
import { loadModule, parseSync } from 'libpg-query';

let loaded: Promise<void> | undefined;

export async function splitSqlScript(sql: string): Promise<string[]> {
  loaded ??= loadModule();
  await loaded;
  let result: { stmts?: { stmt_location?: number; stmt_len?: number }[] };
  try {
    result = parseSync(sql) as typeof result;
  } catch {
    return sql.trim() ? [sql] : [];
  }
  const bytes = Buffer.from(sql, 'utf8');
  const out: string[] = [];
  for (const s of result.stmts ?? []) {
    const start = s.stmt_location ?? 0;
    const end = s.stmt_len ? start + s.stmt_len : bytes.length;
    const text = bytes.toString('utf8', start, end).trim();
    if (text) out.push(text);
  }
  return out;
}
