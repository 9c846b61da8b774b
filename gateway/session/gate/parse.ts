/**
 * Check: the statement text parses, and names resolve. What the parser rejects is never forwarded; the
 * client gets what PostgreSQL itself would say — SQLSTATE 42601, the parser's message and cursor
 * position (psql then prints LINE 1: and the caret as it does without the gateway).
 */
import type { Classification } from '../../../src/shared/statement.js';
import type { GateRequest } from '../../contracts/gate.js';
import type { NameView } from '../../contracts/names.js';
import type { Refusal } from '../../contracts/refusal.js';
import { parseSql } from '../../sql/parser.js';
import { portalClassification, resolveNames } from '../../sql/session-sql.js';
import { classifySyntax } from '../../sql/syntax.js';
import type { Named } from './names.js';

export interface Judged {
  /** What the statements name as written, prepared statements and cursors resolved (names.ts resolves the rest). */
  classification: Classification;
  /** Per statement: the session's names as that statement finds them (for masking). */
  views: NameView[];
  /** True when nothing in the message named a session object (its verdict can be cached). */
  plain: boolean;
  /** Set once names.ts resolved the names: what each statement does to the session. */
  named?: Named;
}

export function judgeText(request: GateRequest): Judged {
  if (request.portalRuns) {
    return { classification: portalClassification(request.portalRuns), views: [request.names], plain: false };
  }
  const classified = classifySyntax(request.sql);
  const { classification, views } = resolveNames(classified, request.names);
  return { classification, views, plain: classification === classified };
}

/** The parser's own error for text it rejects: message, position, and where in the parser it came from. */
export function syntaxRefusal(sql: string): Refusal {
  try {
    parseSql(sql);
  } catch (err) {
    const details = (err as { sqlDetails?: SqlDetails }).sqlDetails;
    const message = (err as Error).message || 'syntax error';
    const extra = parserErrorExtra(details?.functionName, message);
    const refusal: Refusal = {
      sqlstate: extra?.sqlstate ?? '42601',
      routine: details?.functionName ?? 'hoop_syntax_error',
      message,
    };
    if (extra?.detail) refusal.detail = extra.detail;
    if (extra?.hint) refusal.hint = extra.hint;
    if (details) {
      // libpg-query reports 0-based positions, and 0 both for "at the first character" and "none";
      // the scanner's errors always carry one.
      if (details.cursorPosition > 0 || details.functionName === 'scanner_yyerror')
        refusal.position = details.cursorPosition + 1;
      if (details.fileName) refusal.file = details.fileName;
      if (details.lineNumber) refusal.line = details.lineNumber;
    }
    return refusal;
  }
  return { sqlstate: '42601', routine: 'hoop_syntax_error', message: 'the statement could not be parsed' };
}

interface SqlDetails {
  message: string;
  cursorPosition: number;
  fileName?: string;
  functionName?: string;
  lineNumber?: number;
}

/**
 * What libpg-query leaves out of the few parser errors that carry a detail, a hint or a SQLSTATE other than
 * 42601: PostgreSQL's own texts (scan.l, parser.c, gram.y), keyed by the routine that raised the error
 * and its message, so psql prints the same HINT line with and without the gateway.
 */
const PARSER_ERROR_EXTRAS: Record<string, { sqlstate?: string; detail?: string; hint?: string }> = {
  'core_yylex:invalid Unicode escape': {
    sqlstate: '22025',
    hint: 'Unicode escapes must be \\uXXXX or \\UXXXXXXXX.',
  },
  'str_udeescape:invalid Unicode escape': { hint: 'Unicode escapes must be \\XXXX or \\+XXXXXX.' },
  "core_yylex:unsafe use of \\' in a string literal": {
    sqlstate: '22P06',
    hint: "Use '' to write quotes in strings. \\' is insecure in client-only encodings.",
  },
  'base_yyparse:UNENCRYPTED PASSWORD is no longer supported': {
    sqlstate: '0A000',
    hint: 'Remove UNENCRYPTED to store the password in encrypted form instead.',
  },
  'base_yyparse:missing argument': { hint: 'Use NONE to denote the missing argument of a unary operator.' },
  'base_yyparse:LIMIT #,# syntax is not supported': { hint: 'Use separate LIMIT and OFFSET clauses.' },
  'preprocess_pubobj_list:invalid publication object list': {
    detail: 'One of TABLE or TABLES IN SCHEMA must be specified before a standalone table or schema name.',
  },
  'base_yyparse:unrecognized row security option': {
    hint: 'Only PERMISSIVE or RESTRICTIVE policies are supported currently.',
  },
};

function parserErrorExtra(routine: string | undefined, message: string) {
  // The row security option's message names the option: match it without the name.
  const key = message.startsWith('unrecognized row security option ')
    ? 'unrecognized row security option'
    : message;
  return PARSER_ERROR_EXTRAS[`${routine}:${key}`];
}
