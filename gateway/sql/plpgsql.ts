/**
 * PL/pgSQL bodies, read with PostgreSQL's own PL/pgSQL parser (the @libpg-query/parser WASM build, the
 * only one that ships it), so a function's effect is classified by the SQL it runs rather than assumed.
 * The module is loaded on first use (the catalog load awaits it); after that parsing is synchronous.
 * What the parser rejects, and SQL built at run time (EXECUTE), is reported as unknown.
 */

interface PlpgsqlModule {
  parsePlPgSQLSync(sql: string): unknown;
  scanSync(sql: string): { tokens: { start: number; end: number; text: string }[] };
}

/** The Emscripten module inside @libpg-query/parser: C functions over a string in WASM memory. */
interface WasmModule {
  lengthBytesUTF8(text: string): number;
  stringToUTF8(text: string, ptr: number, max: number): void;
  UTF8ToString(ptr: number): string;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _wasm_parse_plpgsql(ptr: number): number;
  _wasm_scan(ptr: number): number;
  _wasm_free_string(ptr: number): void;
}

/**
 * The package's own entry point also loads its 5 MB protobuf module (for deparse), which costs the
 * gateway ~18 MB of resident memory and is never used here: load the WASM module directly and call
 * its two C functions the way the entry point does (the version is pinned in package.json).
 */
const WASM_ENTRY = '@libpg-query/parser/wasm/libpg-query.js';

function wrap(wasm: WasmModule): PlpgsqlModule {
  const call = (fn: (ptr: number) => number, text: string): unknown => {
    const size = wasm.lengthBytesUTF8(text) + 1;
    const input = wasm._malloc(size);
    let output = 0;
    try {
      wasm.stringToUTF8(text, input, size);
      output = fn(input);
      const answer = wasm.UTF8ToString(output);
      if (/^(syntax error|deparse error|ERROR)/.test(answer)) throw new Error(answer);
      return JSON.parse(answer);
    } finally {
      wasm._free(input);
      if (output) wasm._wasm_free_string(output);
    }
  };
  return {
    parsePlPgSQLSync: (text) => call(wasm._wasm_parse_plpgsql, text),
    scanSync: (text) => call(wasm._wasm_scan, text) as ReturnType<PlpgsqlModule['scanSync']>,
  };
}

let module: PlpgsqlModule | undefined;
let loading: Promise<void> | undefined;
/** The WASM instance aborted (an assertion in the C code): it cannot be used again in this process. */
let broken = false;

/** Load the PL/pgSQL parser. Idempotent; never rejects (without it, PL/pgSQL bodies are unknown). */
export function loadPlpgsqlParser(): Promise<void> {
  loading ??= (import(WASM_ENTRY) as Promise<{ default: () => Promise<WasmModule> }>)
    .then(async (m) => {
      module = wrap(await m.default());
    })
    .catch(() => {
      broken = true;
    });
  return loading;
}

export function isPlpgsqlParserLoaded(): boolean {
  return module !== undefined && !broken;
}

/** What a PL/pgSQL body runs: its SQL statements and expressions (as SQL text), and what cannot be seen. */
export interface PlpgsqlBody {
  /** Statements (INSERT ..., SELECT ... INTO, PERFORM's SELECT, CALL ...) and expressions as `SELECT expr`. */
  statements: string[];
  /** EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE: SQL made at run time. */
  dynamic: boolean;
  /** COMMIT / ROLLBACK inside (procedures). */
  transaction: boolean;
}

/** Parse one `CREATE FUNCTION ... LANGUAGE plpgsql AS ...` or `DO` text; undefined when it cannot be read. */
export function readPlpgsql(createText: string): PlpgsqlBody | undefined {
  if (!module || broken) return undefined;
  let tree: unknown;
  try {
    tree = module.parsePlPgSQLSync(createText);
  } catch (err) {
    if (String((err as Error).message).startsWith('Aborted(')) broken = true;
    return undefined;
  }
  const body: PlpgsqlBody = { statements: [], dynamic: false, transaction: false };
  collect(tree, body);
  return body;
}

const DYNAMIC = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors']);
const TRANSACTION = new Set(['PLpgSQL_stmt_commit', 'PLpgSQL_stmt_rollback']);

function collect(value: unknown, body: PlpgsqlBody): void {
  if (Array.isArray(value)) {
    for (const item of value) collect(item, body);
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  for (const [key, child] of Object.entries(value)) {
    if (DYNAMIC.has(key)) body.dynamic = true;
    if (TRANSACTION.has(key)) body.transaction = true;
    if (key === 'dynquery') body.dynamic = true; // OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE
    if (key === 'PLpgSQL_expr' && typeof child === 'object' && child !== null) {
      const expr = child as { query?: unknown; parseMode?: unknown };
      const text =
        typeof expr.query === 'string' ? sqlOf(expr.query, Number(expr.parseMode ?? 0)) : undefined;
      if (text === undefined) body.dynamic = true;
      else body.statements.push(text);
      continue;
    }
    collect(child, body);
  }
}

/**
 * The SQL text of one PL/pgSQL expression. Mode 0 is a whole statement; 2 an expression; 3-5 the
 * assignments `target := expr` (the expression is what runs: the part after the first top-level `:=`
 * or `=`, found with the SQL scanner).
 */
function sqlOf(query: string, mode: number): string | undefined {
  if (mode === 0) return query;
  if (mode === 2) return `SELECT ${query}`;
  try {
    const bytes = Buffer.from(query, 'utf8');
    let depth = 0;
    for (const token of module!.scanSync(query).tokens) {
      if (token.text === '(' || token.text === '[') depth++;
      else if (token.text === ')' || token.text === ']') depth--;
      else if (depth === 0 && (token.text === ':=' || token.text === '=')) {
        return `SELECT ${bytes.subarray(token.end).toString('utf8')}`;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** A dollar-quote tag that does not occur in the text. */
export function dollarQuote(text: string): string {
  let tag = '$hoop$';
  for (let i = 0; text.includes(tag); i++) tag = `$hoop${i}$`;
  return tag;
}
