/**
 * Masking for one session: for each statement the gate forwards, decide from lineage whether it is
 * denied (masked values flowing into storage or side effects, COPY of masked data, the inference
 * guard, an unprovable statement under `masking_fallback: deny`) or which result filter it runs.
 * EXECUTE and FETCH are masked like the statement they run, read from the relay's one model of the
 * session's prepared statements and cursors (whichever half of the protocol made them).
 */
import type { ClassifiedStatement } from '../../src/shared/statement.js';
import { type NameView, NO_NAMES, type PortalDef } from '../contracts/names.js';
import { LruCache } from '../sql/lru.js';
import { type ParseResult, parseSql } from '../sql/parser.js';
import type { Catalog, CatalogSource } from './catalog.js';
import { FALLBACK_RULE, type MaskedColumn, MaskingFilter } from './filter.js';
import { analyzeStatement, mergeLineage, type Output, type StatementLineage, ViewCache } from './lineage.js';
import type { MaskContext } from './masks.js';
import type { MaskRules } from './rules.js';

export type { MaskedColumn } from './filter.js';
export { resolveMaskRules } from './rules.js';

export interface MaskingDeps {
  catalog: CatalogSource;
  ctx: MaskContext;
  /** `masking.copy`: COPY TO STDOUT of masked data is refused (default) or streamed masked (text, csv). */
  copy?: 'deny' | 'mask';
}

export interface StatementMasking {
  /** Refuse the statement: the rule and the reason. */
  deny?: { rule: string; reason: string };
  /** Run this filter over the statement's results (undefined: nothing to mask). */
  filter?: MaskingFilter;
  /** Output columns masked, as far as known before the statement runs. */
  masked?: MaskedColumn[];
}

const parseCache = new LruCache<string, ParseResult>(2000);

function parseCached(sql: string): ParseResult {
  let parsed = parseCache.get(sql);
  if (!parsed) {
    parsed = parseSql(sql);
    if (sql.length <= 64 * 1024) parseCache.set(sql, parsed);
  }
  return parsed;
}

export class SessionMasking {
  private readonly views = new ViewCache((sql) => parseSql(sql));

  constructor(private readonly deps: MaskingDeps) {}

  /** The schema may have changed (DDL through this gateway). */
  invalidate(): void {
    this.deps.catalog.invalidate();
  }

  /**
   * Plan every statement of one message. `rules[i]` are statement i's masking rules; `names[i]` are the
   * session's prepared statements and cursors as statement i finds them (the relay's one model, plus
   * what earlier statements of the message did), which EXECUTE and FETCH run;
   * `portalRuns` is the portal an Execute runs when it was made by PREPARE + Bind or by DECLARE.
   * Synchronous unless the catalog must be loaded; that promise rejects when the catalog cannot be
   * read (the caller fails closed).
   */
  plan(
    sql: string,
    statements: readonly ClassifiedStatement[],
    rules: readonly MaskRules[],
    names: readonly NameView[] | NameView = NO_NAMES,
    portalRuns?: PortalDef,
  ): StatementMasking[] | Promise<StatementMasking[]> {
    if (!rules.some((r) => r.active)) return statements.map(() => ({}));
    const catalog = this.deps.catalog.peek?.();
    if (catalog) return this.planWith(catalog, sql, statements, rules, names, portalRuns);
    return this.deps.catalog.get().then((c) => this.planWith(c, sql, statements, rules, names, portalRuns));
  }

  private planWith(
    catalog: Catalog,
    sql: string,
    statements: readonly ClassifiedStatement[],
    rules: readonly MaskRules[],
    names: readonly NameView[] | NameView,
    portalRuns?: PortalDef,
  ): StatementMasking[] {
    const viewOf = (i: number) => (Array.isArray(names) ? (names[i] ?? NO_NAMES) : (names as NameView));
    const lookupOf = (i: number) => new NameLineage(viewOf(i), catalog, this.views);
    if (portalRuns) {
      const lookup = lookupOf(0);
      const lineage = lookup.ofPortalRun(portalRuns);
      return statements.map((stmt, i) => this.decide(stmt, lineage, rules[i]!, catalog, lookup));
    }
    let parsed: ParseResult;
    try {
      parsed = parseCached(sql);
    } catch {
      return statements.map(() => ({
        deny: { rule: FALLBACK_RULE, reason: 'the statement could not be parsed for masking' },
      }));
    }
    const nodes = (parsed.stmts ?? []).map((s) => s.stmt);
    return statements.map((stmt, i) => {
      const node = nodes.length === statements.length ? nodes[i] : undefined;
      const lineage = analyzeStatement(node, catalog, this.views);
      return this.decide(stmt, lineage, rules[i]!, catalog, lookupOf(i));
    });
  }

  private decide(
    stmt: ClassifiedStatement,
    lineage: StatementLineage,
    rules: MaskRules,
    catalog: Catalog,
    names: NameLineage,
  ): StatementMasking {
    if (!rules.active) return {};
    let effective = lineage;
    if (lineage.execute !== undefined) {
      const prepared = names.ofStatement(lineage.execute);
      effective = prepared ? withParameters(executed(prepared), lineage) : { ...lineage, rows: 'unknown' };
      if (lineage.executeInto && !prepared) {
        const reason = `cannot tell what prepared statement "${lineage.execute}" would store in the new table`;
        return { deny: { rule: 'masking-sink', reason } };
      }
      if (lineage.executeInto) effective = intoTable(effective, lineage);
    }
    const masked = (sources: Iterable<string>, guardOnly = false) =>
      [...sources].filter((s) => {
        const rule = rules.column(s);
        return rule !== undefined && (!guardOnly || rule.guard);
      });

    if (effective.opaque && stmt.kind === 'DoStmt') {
      return {
        deny: {
          rule: 'masking-opaque',
          reason: `${effective.opaque}, and this identity sees masked columns`,
        },
      };
    }
    const sunk = masked(effective.sinks);
    if (sunk.length > 0) {
      return {
        deny: {
          rule: 'masking-sink',
          reason: `masked column ${sunk.join(', ')} would be copied into storage or a side effect (INSERT/UPDATE values, CREATE TABLE AS, set_config, pg_notify ...)`,
        },
      };
    }
    if (effective.unknownSink && rules.fallback === 'deny') {
      return {
        deny: {
          rule: FALLBACK_RULE,
          reason: 'values of unknown lineage would be copied into storage or a side effect',
        },
      };
    }
    const guarded = masked(effective.predicates, true);
    if (guarded.length > 0) {
      return {
        deny: {
          rule: 'inference-guard',
          reason: `masked column ${guarded.join(', ')} is used in a predicate, join, grouping, ordering or comparison`,
        },
      };
    }
    const computedOn = masked(effective.computed, true);
    if (computedOn.length > 0) {
      return {
        deny: {
          rule: 'inference-guard',
          reason: `masked column ${computedOn.join(', ')} is computed on, and whether that fails (a division by zero, a failed cast) tells its value; select the column as it is`,
        },
      };
    }
    if (effective.unknownPredicate && (rules.guardUnknown || (rules.guard && rules.fallback === 'deny'))) {
      return { deny: { rule: 'inference-guard', reason: 'a predicate uses values of unknown lineage' } };
    }
    if (lineage.explain) {
      if (!explainable(effective, masked)) {
        const reason =
          'EXPLAIN of a statement that reads masked columns or data of unknown lineage (a user function, operator or cast) would print values the planner computed in clear; run the statement itself, which is masked';
        return { deny: { rule: 'masking-explain', reason } };
      }
      // The plan's text lines are clear (a table with masked columns would otherwise mask them whole).
      effective = { ...effective, rows: 'known', outputs: [PLAN_TEXT] };
    }
    if (effective.copyOut) {
      const copied = masked(effective.copyOut.sources);
      if (copied.length > 0 || effective.copyOut.unknown) {
        const format = effective.copyFormat;
        const what =
          copied.length > 0 ? `masked column ${copied.join(', ')}` : 'data whose lineage cannot be proven';
        let reason: string | undefined;
        if (this.deps.copy !== 'mask')
          reason = `COPY would send ${what}; use SELECT, which is masked (or set masking.copy: mask)`;
        else if (!format || !effective.copyColumns)
          reason = `COPY would send ${what} with options the gateway cannot follow to mask the rows`;
        else if (format.format === 'binary')
          reason = `binary COPY would send ${what} and cannot be masked; use text or csv format`;
        else if (effective.copyOut.unknown && rules.fallback === 'deny')
          reason = `COPY would send ${what} (masking_fallback: deny)`;
        if (reason) return { deny: { rule: 'masking-copy', reason } };
        const filter = new MaskingFilter({
          outputs: effective.copyColumns!,
          rules,
          ctx: this.deps.ctx,
          catalog,
          views: this.views,
          redactMessages: true,
          copy: format!,
        });
        const maskedColumns = filter.masked();
        return { filter, masked: maskedColumns.length ? maskedColumns : undefined };
      }
    }

    const readsMasked =
      masked(effective.reads).length > 0 ||
      effective.unknownRead ||
      stmt.relations.some((r) => touchesMasked(r, catalog, rules));
    // An error of a statement that changes rows already there may quote the whole failing row ("Failing
    // row contains (...)", a CHECK OPTION) of a table the statement does not name: the base table of an
    // updatable view, the child of a parent. Its messages are withheld however harmless its own columns
    // look. (COPY FROM STDIN only adds the client's own rows: its errors echo what the client sent.)
    const changesData = [stmt.class, ...(stmt.alsoClasses ?? [])].some((c) => c === 'write' || c === 'ddl');
    const redactMessages = readsMasked || changesData;

    let outputs: readonly Output[] | 'unknown' | undefined;
    if (lineage.fetchCursor !== undefined) {
      const cursor = names.outputsOfCursor(lineage.fetchCursor);
      outputs = cursor ?? 'unknown';
      if (!cursor && rules.fallback === 'deny') {
        return {
          deny: {
            rule: FALLBACK_RULE,
            reason: `cursor "${lineage.fetchCursor}" was not declared through this session, so what it returns cannot be proven`,
          },
        };
      }
    } else if (effective.rows === 'known') outputs = effective.outputs;
    else if (effective.rows === 'unknown') outputs = 'unknown';
    else if (effective.rows === 'clear') outputs = undefined;
    else outputs = 'unknown'; // 'none': no rows expected; if any come, they are masked whole.

    if (outputs !== undefined && rules.fallback === 'deny') {
      const unknown =
        outputs === 'unknown' ? effective.rows !== 'none' : outputs.some((o) => o.lineage.unknown);
      if (unknown) {
        return {
          deny: {
            rule: FALLBACK_RULE,
            reason: 'the lineage of an output column cannot be proven (masking_fallback: deny)',
          },
        };
      }
    }
    const filter =
      outputs === undefined && !redactMessages
        ? undefined
        : new MaskingFilter({
            outputs: outputs ?? [],
            rules,
            ctx: this.deps.ctx,
            catalog,
            views: this.views,
            redactMessages,
            // PostgreSQL runs a WITH HOLD cursor's query again when the transaction commits, and a write's
            // deferred constraints and triggers then (or at SET CONSTRAINTS ... IMMEDIATE): their errors
            // come back as another message's ("Key (ssn)=(...) is still referenced").
            runsAtCommit: (effective.declareCursor?.hold === true && readsMasked) || changesData,
          });
    const maskedColumns =
      filter && outputs !== undefined && outputs !== 'unknown' ? filter.masked() : undefined;
    return { filter, masked: maskedColumns?.length ? maskedColumns : undefined };
  }
}

/** EXPLAIN's rows, whatever their number of columns, of a statement explainable() let through. */
const PLAN_TEXT: Output = {
  name: 'QUERY PLAN',
  lineage: { sources: new Set(), transformed: false, unknown: false },
  open: true,
};

/**
 * May the plan of this statement be shown: nothing it reads is masked or of unknown lineage (outputs,
 * predicates, sinks), and what EXECUTE runs is known. A plan prints the constants the planner folded
 * (`EXPLAIN VERBOSE select f(1)` of an IMMUTABLE `f` reading a masked column shows its result) and,
 * with ANALYZE, counts rows a predicate kept: neither passes through a result filter.
 */
function explainable(l: StatementLineage, masked: (sources: Iterable<string>) => string[]): boolean {
  if (l.unknownRead || l.unknownPredicate || l.unknownSink || l.rows === 'unknown') return false;
  if (l.outputs.some((o) => o.lineage.unknown)) return false;
  return masked(l.reads).length === 0;
}

/** EXECUTE of a prepared statement returns what the statement returns (a PREPARE itself returns nothing). */
function executed(prepared: StatementLineage): StatementLineage {
  const effective: StatementLineage = {
    ...prepared,
    rows: prepared.rows === 'none' ? 'known' : prepared.rows,
    prepare: undefined,
  };
  return prepared.declareCursor ? { ...effective, rows: 'none' } : effective;
}

/**
 * EXECUTE's parameters flow into what the prepared statement returns (`PREPARE p(text) AS SELECT $1`):
 * a parameter computed from masked or unknown data (a user function reading a masked column) makes
 * every output derive from it, and what the parameters read counts as read.
 */
function withParameters(run: StatementLineage, use: StatementLineage): StatementLineage {
  const params = use.executeParams;
  if (!params || (params.sources.size === 0 && !params.unknown)) return run;
  return {
    ...run,
    outputs: run.outputs.map((o) => ({ ...o, lineage: mergeLineage([o.lineage, params], true) })),
    reads: new Set([...run.reads, ...use.reads]),
    unknownRead: run.unknownRead || use.unknownRead,
  };
}

/** CREATE TABLE AS EXECUTE: the rows the prepared statement returns are stored, not sent (sinks). */
function intoTable(run: StatementLineage, use: StatementLineage): StatementLineage {
  const sinks = new Set([...run.sinks, ...use.sinks]);
  for (const o of run.outputs) for (const source of o.lineage.sources) sinks.add(source);
  const unknown = run.rows === 'unknown' || run.outputs.some((o) => o.lineage.unknown);
  return {
    ...run,
    rows: 'none',
    outputs: [],
    sinks,
    unknownSink: run.unknownSink || use.unknownSink || unknown,
  };
}

/**
 * The lineage of what the session's names run, read from the relay's one model: a prepared
 * statement (its Parse text or its PREPARE statement), a cursor (its DECLARE, or the statement a
 * portal was bound to). Undefined when the name is absent or cannot be pinned down.
 */
class NameLineage {
  constructor(
    private readonly names: NameView,
    private readonly catalog: Catalog,
    private readonly views: ViewCache,
  ) {}

  ofText(text: string): StatementLineage | undefined {
    try {
      const node = parseCached(text).stmts?.[0]?.stmt;
      return analyzeStatement(node, this.catalog, this.views);
    } catch {
      return undefined;
    }
  }

  ofStatement(name: string): StatementLineage | undefined {
    const r = this.names.statement(name);
    return r.state === 'known' ? this.ofText(r.def.text) : undefined;
  }

  /** The rows a cursor (or a portal) returns when fetched; undefined when it is not known. */
  outputsOfCursor(name: string): readonly Output[] | 'unknown' | undefined {
    const r = this.names.portal(name);
    if (r.state !== 'known') return undefined;
    const lineage = this.ofPortalRun(r.def);
    return lineage.rows === 'known' ? lineage.outputs : lineage.rows === 'clear' ? [] : 'unknown';
  }

  /** An Execute (or FETCH) of a portal: a DECLARE returns its query's rows; a bound statement its own. */
  ofPortalRun(portal: PortalDef): StatementLineage {
    const lineage = this.ofText(portal.text);
    if (!lineage) return unknownRows();
    if (portal.origin === 'declare') return { ...lineage, declareCursor: undefined, rows: 'known' };
    return executed(lineage);
  }
}

function unknownRows(): StatementLineage {
  return {
    rows: 'unknown',
    outputs: [],
    reads: new Set(),
    predicates: new Set(),
    computed: new Set(),
    sinks: new Set(),
    unknownRead: true,
    unknownPredicate: false,
    unknownSink: false,
  };
}

/** Does this relation (or a view over it) hold a column this identity sees masked? */
function touchesMasked(relation: string, catalog: Catalog, rules: MaskRules): boolean {
  const r = catalog.relation(relation);
  if (!r) return false;
  const q = `${r.schema}.${r.name}`.toLowerCase();
  return r.columns.some((c) => rules.column(`${q}.${c.name.toLowerCase()}`) !== undefined);
}
