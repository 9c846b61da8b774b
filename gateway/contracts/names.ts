/**
 * The session's named objects as the stages see them: PostgreSQL's two namespaces (prepared
 * statements; portals, which SQL calls cursors), whichever half of the protocol made them. The
 * relay's session model owns them and answers lookups; the gate, masking and approvals only read.
 */
import type { ClassifiedStatement } from '../../src/shared/statement.js';

/** A prepared statement: made by a protocol Parse or by SQL PREPARE. */
export interface StatementDef {
  readonly id: number;
  readonly name: string;
  readonly origin: 'parse' | 'prepare';
  /** The text the server holds: the Parse's SQL, or the whole PREPARE statement. */
  readonly text: string;
  /**
   * What runs when it is executed: the Parse text's statement, or PREPARE's inner statement.
   * Undefined for an empty statement (a Parse of blank text) or text the parser rejected.
   */
  readonly runs: ClassifiedStatement | undefined;
  /** Parse: the parameter type OIDs the client gave (0 = let the server infer). */
  readonly parameterTypes?: readonly number[];
}

/** A portal: made by a protocol Bind of a statement, or by SQL DECLARE (a cursor). */
export interface PortalDef {
  readonly id: number;
  readonly name: string;
  readonly origin: 'bind' | 'declare';
  /** Bind: the statement as it was when bound (the portal keeps it even if the name is reused). */
  readonly statement?: StatementDef;
  /** DECLARE: the DECLARE statement's text; Bind: the statement's text. */
  readonly text: string;
  /** What executing (or FETCHing from) the portal runs. */
  readonly runs: ClassifiedStatement | undefined;
  /** DECLARE ... WITH HOLD: outlives the transaction that made it (if that one commits). */
  readonly hold: boolean;
  /** Bind: the bound parameter values and their formats (approvals and records show them). */
  readonly parameters?: (Buffer | null)[];
  readonly parameterFormats?: number[];
  /** Bind: result column format codes. */
  readonly resultFormats: readonly number[];
  /**
   * Bind: every value search_path may have had at the Bind. The server plans a portal at Bind and
   * never re-plans it, so its relations are the ones that path resolved.
   */
  readonly searchPaths?: readonly string[];
}

/**
 * What the server will hold under a name when a message now being judged runs:
 * - absent: certainly nothing (the server will answer "does not exist");
 * - known: this definition (or nothing, if a message still in flight fails);
 * - unknown: the gateway cannot tell which of several definitions the server holds; any use is refused.
 */
export type Resolution<T> = { state: 'absent' } | { state: 'known'; def: T } | { state: 'unknown' };

export interface NameView {
  statement(name: string): Resolution<StatementDef>;
  portal(name: string): Resolution<PortalDef>;
}

/** A view with nothing in it (tools and tests that judge text outside a session). */
export const NO_NAMES: NameView = {
  statement: () => ({ state: 'absent' }),
  portal: () => ({ state: 'absent' }),
};
