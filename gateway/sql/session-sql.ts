/**
 * SQL statements that name the session's objects (PREPARE, EXECUTE, DEALLOCATE, DECLARE, FETCH, MOVE,
 * CLOSE, DISCARD) or end and nest transactions: what each one does to the session (`sessionEffectOf`),
 * and a message's statements judged by what they really run (`resolveNames`): EXECUTE takes the class,
 * relations and functions of the statement the server will execute, FETCH and MOVE those of the
 * portal's query. Pure: the names come from the relay's one session model (a NameView).
 *
 * Names here are as the server sees them: the parser has already folded and truncated identifiers
 * (63 bytes), so `EXECUTE "X"` and a protocol Parse of `X` name the same statement, and a longer
 * protocol name does not.
 */
import type { Classification, ClassifiedStatement } from '../../src/shared/statement.js';
import type { NameView, PortalDef, Resolution, StatementDef } from '../contracts/names.js';
import { preparedUseOf } from './classify.js';
import { parseSql } from './parser.js';
import { setBoundSearchPaths, setExecutedSyntaxFacts } from './syntax.js';

/** A transaction boundary a statement makes when it succeeds (SET LOCAL, portals and savepoints follow them). */
export type TransactionEvent =
  | { type: 'begin' }
  | { type: 'commit'; chain?: boolean }
  | { type: 'rollback'; chain?: boolean }
  | { type: 'savepoint'; name: string }
  | { type: 'release'; name: string }
  | { type: 'rollback-to'; name: string }
  /** PREPARE TRANSACTION: the transaction leaves the session (as a rollback does, for its portals). */
  | { type: 'prepare-transaction' };

export type SessionEffect =
  | { kind: 'prepare'; name: string }
  /** `into`: CREATE TABLE ... AS EXECUTE, which also creates a table. */
  | { kind: 'execute'; name: string; explainAnalyze: boolean; into?: boolean }
  | { kind: 'deallocate'; name: string | null }
  | { kind: 'declare'; name: string; hold: boolean }
  /** FETCH and MOVE: both run the portal's query. */
  | { kind: 'fetch'; name: string }
  | { kind: 'close'; name: string | null }
  | { kind: 'discard-all' }
  | { kind: 'transaction'; event: TransactionEvent };

/** DECLARE's option bit for WITH HOLD (CURSOR_OPT_HOLD in PostgreSQL's parsenodes.h). */
const CURSOR_OPT_HOLD = 0x0020;

const KINDS_WITH_EFFECTS = new Set([
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'DiscardStmt',
  'TransactionStmt',
  'ExplainStmt',
  'CreateTableAsStmt',
]);

const effects = new WeakMap<ClassifiedStatement, SessionEffect | null>();

/** What this statement does to the session's names or transaction; undefined for most statements. */
export function sessionEffectOf(stmt: ClassifiedStatement): SessionEffect | undefined {
  if (!KINDS_WITH_EFFECTS.has(stmt.kind)) return undefined;
  let effect = effects.get(stmt);
  if (effect === undefined) {
    effect = effectOfText(stmt.text) ?? null;
    effects.set(stmt, effect);
  }
  return effect ?? undefined;
}

function effectOfText(text: string): SessionEffect | undefined {
  let node: Record<string, Record<string, unknown>> | undefined;
  try {
    node = parseSql(text).stmts?.[0]?.stmt as Record<string, Record<string, unknown>> | undefined;
  } catch {
    return undefined;
  }
  if (!node) return undefined;
  const [kind, body] = Object.entries(node)[0] ?? [];
  if (!kind || !body) return undefined;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  switch (kind) {
    case 'PrepareStmt':
      return { kind: 'prepare', name: str(body.name) };
    case 'ExecuteStmt':
      return { kind: 'execute', name: str(body.name), explainAnalyze: false };
    case 'ExplainStmt': {
      const query = body.query as Record<string, Record<string, unknown>> | undefined;
      const options = Array.isArray(body.options) ? body.options : [];
      const analyze = options.some(
        (o) => (o as { DefElem?: { defname?: string } }).DefElem?.defname === 'analyze',
      );
      if (query?.ExecuteStmt && analyze)
        return { kind: 'execute', name: str(query.ExecuteStmt.name), explainAnalyze: true };
      const into = (query?.CreateTableAsStmt?.query as Record<string, Record<string, unknown>> | undefined)
        ?.ExecuteStmt;
      if (into && analyze) return { kind: 'execute', name: str(into.name), explainAnalyze: true, into: true };
      return undefined;
    }
    case 'CreateTableAsStmt': {
      const query = body.query as Record<string, Record<string, unknown>> | undefined;
      if (!query?.ExecuteStmt) return undefined;
      return { kind: 'execute', name: str(query.ExecuteStmt.name), explainAnalyze: false, into: true };
    }
    case 'DeallocateStmt':
      return { kind: 'deallocate', name: body.isall ? null : str(body.name) };
    case 'DeclareCursorStmt':
      return {
        kind: 'declare',
        name: str(body.portalname),
        hold: (Number(body.options ?? 0) & CURSOR_OPT_HOLD) !== 0,
      };
    case 'FetchStmt':
      return { kind: 'fetch', name: str(body.portalname) };
    case 'ClosePortalStmt':
      return { kind: 'close', name: typeof body.portalname === 'string' ? body.portalname : null };
    case 'DiscardStmt':
      return body.target === 'DISCARD_ALL' ? { kind: 'discard-all' } : undefined;
    case 'TransactionStmt':
      return transactionEffect(body);
  }
  return undefined;
}

function transactionEffect(body: Record<string, unknown>): SessionEffect | undefined {
  const name = typeof body.savepoint_name === 'string' ? body.savepoint_name : '';
  const chain = body.chain === true;
  const event = ((): TransactionEvent | undefined => {
    switch (body.kind) {
      case 'TRANS_STMT_BEGIN':
      case 'TRANS_STMT_START':
        return { type: 'begin' };
      case 'TRANS_STMT_COMMIT':
        return { type: 'commit', chain };
      case 'TRANS_STMT_ROLLBACK':
        return { type: 'rollback', chain };
      case 'TRANS_STMT_SAVEPOINT':
        return { type: 'savepoint', name };
      case 'TRANS_STMT_RELEASE':
        return { type: 'release', name };
      case 'TRANS_STMT_ROLLBACK_TO':
        return { type: 'rollback-to', name };
      case 'TRANS_STMT_PREPARE':
        return { type: 'prepare-transaction' };
    }
    return undefined;
  })();
  return event ? { kind: 'transaction', event } : undefined;
}

/** The statement a PREPARE stores (what EXECUTE of it will run). */
export function preparedInner(prepare: ClassifiedStatement): ClassifiedStatement | undefined {
  const use = preparedUseOf(prepare);
  return use?.action === 'prepare' ? use.statement : undefined;
}

let nextOverlayId = -1;

/** A message's statements judged by what they run, and the names each statement finds when it runs. */
export interface ResolvedMessage {
  classification: Classification;
  /** One view per statement: the session's names plus what earlier statements of the message did. */
  views: NameView[];
}

/**
 * Resolve the EXECUTE, FETCH and MOVE statements of one message against the session's names. A
 * message's statements run in order and a failure stops the rest, so a later statement sees what the
 * earlier ones of the same message defined or dropped (PREPARE s ...; EXECUTE s).
 */
export function resolveNames(classification: Classification, names: NameView): ResolvedMessage {
  if (!classification.ok) return { classification, views: [] };
  if (!classification.statements.some((s) => sessionEffectOf(s)))
    return { classification, views: classification.statements.map(() => names) };
  const overlay = new Overlay(names);
  const views: NameView[] = [];
  const resolved = classification.statements.map((stmt) => {
    views.push(overlay.view());
    const effect = sessionEffectOf(stmt);
    if (effect?.kind === 'execute')
      return resolveUse(
        stmt,
        'prepared statement',
        effect.name,
        overlay.statement(effect.name),
        effect.explainAnalyze,
        effect.into,
      );
    if (effect?.kind === 'fetch')
      return resolveUse(stmt, 'cursor', effect.name, overlay.portal(effect.name), false);
    if (effect) overlay.apply(effect, stmt);
    return stmt;
  });
  return { classification: { ok: true, statements: resolved }, views };
}

/** The session's names with the changes of a message's earlier statements laid over them. */
class Overlay {
  private statements = new Map<string, Resolution<StatementDef>>();
  private portals = new Map<string, Resolution<PortalDef>>();
  private allStatements = false;
  private allPortals = false;

  constructor(private readonly names: NameView) {}

  statement(name: string): Resolution<StatementDef> {
    return (
      this.statements.get(name) ?? (this.allStatements ? { state: 'absent' } : this.names.statement(name))
    );
  }

  portal(name: string): Resolution<PortalDef> {
    return this.portals.get(name) ?? (this.allPortals ? { state: 'absent' } : this.names.portal(name));
  }

  /** A frozen copy: what the next statement finds. */
  view(): NameView {
    const copy = new Overlay(this.names);
    copy.statements = new Map(this.statements);
    copy.portals = new Map(this.portals);
    copy.allStatements = this.allStatements;
    copy.allPortals = this.allPortals;
    return { statement: (n) => copy.statement(n), portal: (n) => copy.portal(n) };
  }

  apply(effect: SessionEffect, stmt: ClassifiedStatement): void {
    switch (effect.kind) {
      case 'prepare':
        this.statements.set(effect.name, {
          state: 'known',
          def: {
            id: nextOverlayId--,
            name: effect.name,
            origin: 'prepare',
            text: stmt.text,
            runs: preparedInner(stmt),
          },
        });
        return;
      case 'declare':
        this.portals.set(effect.name, {
          state: 'known',
          def: {
            id: nextOverlayId--,
            name: effect.name,
            origin: 'declare',
            text: stmt.text,
            runs: stmt,
            hold: effect.hold,
            resultFormats: [],
          },
        });
        return;
      case 'deallocate':
        if (effect.name !== null) this.statements.set(effect.name, { state: 'absent' });
        else {
          this.statements.clear();
          this.allStatements = true;
        }
        return;
      case 'close':
        if (effect.name !== null) this.portals.set(effect.name, { state: 'absent' });
        else {
          this.portals.clear();
          this.allPortals = true;
        }
        return;
      case 'discard-all':
        this.statements.clear();
        this.portals.clear();
        this.allStatements = this.allPortals = true;
        return;
      default:
        return;
    }
  }
}

/**
 * EXECUTE name / FETCH name: take the class, relations, functions and flags of what the name runs.
 * A name the gateway cannot pin down is unplaceable (policy refuses it), and so is EXECUTE of a name
 * that does not exist.
 */
function resolveUse(
  use: ClassifiedStatement,
  what: 'prepared statement' | 'cursor',
  name: string,
  resolution: Resolution<StatementDef | PortalDef>,
  explainAnalyze: boolean,
  into = false,
): ClassifiedStatement {
  // A name that certainly does not exist: the statement stays as the classifier placed it (an EXECUTE
  // of it is unplaceable and refused; a FETCH from it fails at the server).
  if (resolution.state === 'absent') return use;
  const base = { ...use };
  delete base.unplaceable;
  if (resolution.state === 'unknown') {
    const again =
      what === 'cursor' ? 'CLOSE it and DECLARE (or Bind) it again' : 'DEALLOCATE it and PREPARE it again';
    return {
      ...base,
      unplaceable: `${what} "${name}" may hold one of several definitions the gateway cannot tell apart; ${again}`,
    };
  }
  const runs = resolution.def.runs;
  if (!runs) return { ...base, class: 'session' };
  const flags = new Set([...runs.flags, ...use.flags]);
  flags.delete('prepare');
  if (explainAnalyze && (into || runs.class !== 'read')) flags.add('explain-analyze-write');
  // CREATE TABLE ... AS EXECUTE runs the statement into a new table: ddl, as CREATE TABLE AS is.
  if (into) flags.add('select-into');
  const resolved: ClassifiedStatement = {
    text: use.text,
    class: into ? 'ddl' : runs.class,
    kind: use.kind,
    relations: union(runs.relations, use.relations),
    functions: union(runs.functions, use.functions),
    flags: [...flags].sort(),
    sideChannels: union(runs.sideChannels, use.sideChannels),
    fingerprint: use.fingerprint,
  };
  if (runs.unplaceable) resolved.unplaceable = runs.unplaceable;
  // One class cannot say "creates a table and writes rows elsewhere" (a data-modifying WITH): refuse.
  if (into && runs.class !== 'read')
    resolved.unplaceable = `CREATE TABLE AS EXECUTE of ${what} "${name}", which does not only read`;
  // EXECUTE runs the statement's SET or set_config too (not EXPLAIN ANALYZE of a utility statement).
  if (use.kind === 'ExecuteStmt') setExecutedSyntaxFacts(resolved, use, runs);
  // FETCH of a protocol portal runs the plan made at its Bind, under the search_path of then.
  const def = resolution.def;
  if (what === 'cursor' && 'origin' in def && def.origin === 'bind')
    setBoundSearchPaths(resolved, def.searchPaths);
  runsOf.set(resolved, resolution.def);
  return resolved;
}

/** The definition a resolved EXECUTE/FETCH runs (its text goes into the record). */
const runsOf = new WeakMap<ClassifiedStatement, StatementDef | PortalDef>();

export function definitionRun(stmt: ClassifiedStatement): StatementDef | PortalDef | undefined {
  return runsOf.get(stmt);
}

/** A copy of a resolved statement (name resolution makes one) runs the same definition. */
export function keepDefinitionRun(from: ClassifiedStatement, to: ClassifiedStatement): void {
  const def = runsOf.get(from);
  if (def) runsOf.set(to, def);
}

/** Judge the execution of a portal made by PREPARE + Bind or by DECLARE: what its definition runs. */
export function portalClassification(portal: PortalDef): Classification {
  const runs = portal.runs;
  if (!runs) return { ok: true, statements: [] };
  const flags = runs.flags.filter((f) => f !== 'prepare');
  const stmt: ClassifiedStatement = { ...runs, text: portal.text, flags };
  runsOf.set(stmt, portal);
  return { ok: true, statements: [stmt] };
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}
