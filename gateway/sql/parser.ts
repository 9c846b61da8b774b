/**
 * The real PostgreSQL parser (libpg-query, compiled to WASM), loaded once at start so the hot path can
 * parse synchronously. Nothing here classifies: it only turns text into parse trees and statements.
 */
import { loadModule, parseSync } from 'libpg-query';

/** One raw statement of a parse result: the node (`{ SelectStmt: {...} }`) and where it sits in the text. */
export interface RawStatement {
  stmt?: Record<string, unknown>;
  /** Byte offset (UTF-8) of the statement in the text; absent means 0. */
  stmt_location?: number;
  /** Length in bytes; absent or 0 means "to the end of the text". */
  stmt_len?: number;
}

export interface ParseResult {
  version: number;
  stmts?: RawStatement[];
}

let loading: Promise<void> | undefined;
let loaded = false;

/** Load the parser's WASM module. Idempotent: every caller shares the one load. */
export function loadSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    // The parser's main functions are compiled on first use: pay that at start, not in a client's statement.
    parseSync('select 1');
    loaded = true;
  });
  return loading;
}

export function isSqlParserLoaded(): boolean {
  return loaded;
}

/** Parse SQL text; throws the parser's syntax error, or a clear error when loadSqlParser() was not awaited. */
export function parseSql(sql: string): ParseResult {
  if (!loaded) throw new Error('the SQL parser is not loaded: await loadSqlParser() at start-up');
  return parseSync(sql) as ParseResult;
}

/**
 * The text of each statement of a parse result, in order. The parser reports byte offsets into the UTF-8
 * encoding, so slicing happens on bytes, not on UTF-16 string indexes.
 */
export function statementTexts(sql: string, result: ParseResult): string[] {
  const bytes = Buffer.from(sql, 'utf8');
  return (result.stmts ?? []).map((raw) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len ? start + raw.stmt_len : bytes.length;
    return bytes.subarray(start, end).toString('utf8').trim();
  });
}

/** Split a multi-statement string into its statements (comments between them dropped); throws if unparseable. */
export function splitStatements(sql: string): string[] {
  return statementTexts(sql, parseSql(sql));
}
