/**
 * Classification of SQL text, as policy sees it: syntax.ts (what each statement is and names), then
 * resolve.ts (what the names mean). `classify` resolves textually — the server's default search_path
 * and no catalog — which is what the offline `hoopctl policy test` and the unit tests use; a session
 * resolves through its own settings and the catalog instead (session/names.ts).
 */
import type { Classification } from '../../src/shared/statement.js';
import { SecondUseCache } from './lru.js';
import { isSqlParserLoaded } from './parser.js';
import { resolveTextually } from './resolve.js';
import {
  CLASSIFY_CACHE_ENTRIES,
  CLASSIFY_CACHE_MAX_TEXT,
  classifySyntax,
  classifySyntaxUncached,
  clearSyntaxCache,
} from './syntax.js';

export {
  CLASSIFY_CACHE_ENTRIES,
  CLASSIFY_CACHE_MAX_TEXT,
  type PreparedUse,
  preparedUseOf,
} from './syntax.js';

const cache = new SecondUseCache<string, Classification>(CLASSIFY_CACHE_ENTRIES);

/** Classify SQL text under the default search_path (cached). Treat the result as read-only. */
export function classify(sql: string): Classification {
  const cached = cache.get(sql);
  if (cached) return cached;
  const result = resolveTextually(classifySyntax(sql));
  if (isSqlParserLoaded() && sql.length <= CLASSIFY_CACHE_MAX_TEXT) cache.set(sql, result);
  return result;
}

/** Classify without either cache (benchmarks, tests). */
export function classifyUncached(sql: string): Classification {
  return resolveTextually(classifySyntaxUncached(sql));
}

export function clearClassifyCache(): void {
  cache.clear();
  clearSyntaxCache();
}
