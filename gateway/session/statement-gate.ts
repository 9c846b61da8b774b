/**
 * The gate every statement passes: classify (real parser, cached) → policy → write the record
 * durably → forward. Refusals are recorded too. If the record cannot be written, the statement
 * fails (fail closed) unless the operator chose fail-open, which start-up announced loudly.
 */
import { createHash } from 'node:crypto';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { Classification, ClassifiedStatement, Decision } from '../../src/shared/statement.js';
import type { ApprovalHook } from '../approvals/service.js';
import type { MaskingFilter } from '../masking/filter.js';
import { resolveMaskRules, type SessionMasking, type StatementMasking } from '../masking/index.js';
import type { NoticeFields } from '../pgwire/backend.js';
import { type CatalogNeed, type PolicyEngine, WRITING_CLASSES } from '../policy/engine.js';
import type { StatementEffects } from '../sql/resolve.js';
import { type LookupSource, SessionNames } from '../sql/session-names.js';
import { createSessionSqlState } from '../sql/session-sql.js';
import { classifySyntax } from '../sql/syntax.js';
import type { GateRequest, GateVerdict, SessionEvent, SessionGate, StatementOutcome } from './gate.js';
import type { SessionInfo } from './session.js';

export interface RecordSink {
  /** Resolves once the record is durable; rejects when it cannot be written. */
  append(input: AuditRecordInput): Promise<unknown>;
}

export interface StatementGateDeps {
  engine: PolicyEngine;
  log: RecordSink;
  failOpen: boolean;
  recordRows: number;
  recordBytes: number;
  /** Time-boxed grants in force for this identity on this connection (policy names). */
  grants(info: SessionInfo): string[];
  /** Is this identity revoked now? Checked per statement so revocation bites open sessions. */
  revoked(info: SessionInfo): boolean;
  onLogError(err: Error): void;
  /** Approval requests (gateway/approvals): without it, statements needing approval are refused. */
  approvals?: ApprovalHook;
  /** Masking for this session (gateway/masking); without it results pass untouched. */
  masking?: (info: SessionInfo) => SessionMasking | undefined;
  /** The connection's catalog, for resolving names (without it, names resolve textually). */
  catalog?: (info: SessionInfo) => LookupSource;
}

/** Classes a read-only session cannot run (policy/engine.ts WRITING_CLASSES). */
const WRITING = new Set<string>(WRITING_CLASSES);

/** What the relay says when a decision needs the catalog and the gateway cannot read it (fail closed). */
const CATALOG_UNAVAILABLE: NoticeFields = {
  severity: 'ERROR',
  code: '58000',
  message:
    'hoop: the names in this statement cannot be resolved right now (the gateway cannot read the database catalog)',
  hint: 'This gateway fails closed when a decision depends on what names mean. Ask the operator to check the connection.',
  routine: 'hoop_catalog_unavailable',
};

/** What the relay says to a client whose statement could not be recorded. */
const AUDIT_UNAVAILABLE: NoticeFields = {
  severity: 'ERROR',
  code: '58030',
  message: 'hoop: the audit log cannot be written, so the statement was not executed',
  hint: 'This gateway fails closed: nothing runs unrecorded. Ask the operator to check the store.',
  routine: 'hoop_audit_unavailable',
};

export function createStatementGate(info: SessionInfo, deps: StatementGateDeps): SessionGate {
  const sqlState = createSessionSqlState();
  // Names resolve as the server resolves them: the session's settings model and the catalog.
  const names = new SessionNames(
    info.start ?? { resetValues: new Map([['search_path', '"$user", public']]), user: info.connection.user },
  );
  const catalog = deps.catalog?.(info);
  const needs = new Map<string, CatalogNeed>();
  const maskingPolicies = deps.engine
    .policiesFor(info.identity, info.connection.name, deps.grants(info))
    .some((p) => p.masking.length > 0);
  /** Syntax → prepared statements → names; refusals for settings the gateway holds. */
  const resolveNames = async (sql: string) => {
    const syntactic = sqlState.resolve(classifySyntax(sql));
    const grants = deps.grants(info);
    const key = grants.join('\u0000');
    let need = needs.get(key);
    if (!need) {
      need = deps.engine.catalogNeed(info.identity, info.connection.name, { grants });
      needs.set(key, need);
    }
    const statements = syntactic.ok ? syntactic.statements : [];
    const needCatalog =
      (maskingPolicies && deps.masking !== undefined) ||
      statements.some(
        (s) =>
          (need.names && (s.relations.length > 0 || s.functions.length > 0)) ||
          (need.functions && s.functions.length > 0),
      );
    const resolved = await names.resolve(syntactic, catalog, needCatalog);
    return { syntactic, ...resolved };
  };
  const heldRefusal = (
    effects: readonly StatementEffects[],
    classification: Classification,
  ): Decision | undefined => {
    const index = effects.findIndex((e) => e.heldViolation);
    if (index >= 0) {
      return {
        action: 'deny',
        policy: null,
        rule: 'read-only-session',
        reason: effects[index]!.heldViolation!,
      };
    }
    // A grant since the session started may allow writes; the session stays read-only upstream.
    if (names.held.has('default_transaction_read_only') && classification.ok) {
      const writes = classification.statements.find((s) =>
        [s.class, ...(s.alsoClasses ?? [])].some((c) => WRITING.has(c)),
      );
      if (writes) {
        return {
          action: 'deny',
          policy: null,
          rule: 'read-only-session',
          reason: `this session started read-only (no write permission then): reconnect to write`,
        };
      }
    }
    return undefined;
  };
  const masking = deps.masking?.(info);
  /** Masking filters of statements in flight (their evidence goes into statement.result). */
  const maskFilters = new Map<string, MaskingFilter>();
  /** DDL statements in flight: when one finishes, the masking catalog is reloaded. */
  const ddlInFlight = new Set<string>();
  const base = {
    identity: info.identity,
    source: info.source,
    connection: info.connection.name,
    session: info.id,
  };
  let counter = 0;
  const nextId = () => `${info.id.slice(0, 8)}-${++counter}`;

  const record = async (input: Omit<AuditRecordInput, 'identity' | 'source' | 'connection' | 'session'>) => {
    try {
      await deps.log.append({ ...base, ...input });
      return true;
    } catch (err) {
      deps.onLogError(err as Error);
      return deps.failOpen;
    }
  };

  const statementData = (
    stmt: ClassifiedStatement | undefined,
    text: string,
    decision: Decision,
    id: string,
    request: GateRequest,
  ) => ({
    statement_id: id,
    text: stmt?.text ?? text,
    fingerprint: stmt?.fingerprint ?? hashText(text),
    class: stmt?.class ?? null,
    kind: stmt?.kind ?? null,
    relations: stmt?.relations ?? [],
    functions: stmt?.functions ?? [],
    flags: stmt?.flags ?? [],
    // docs/audit.md: allow | deny | approve (the policy's own words; sessions list and replay read them).
    decision: decision.action,
    policy: decision.policy,
    rule: decision.rule,
    reason: decision.reason,
    protocol: request.phase === 'query' ? 'simple' : 'extended',
    prepared: request.statementName || undefined,
    parameters: request.parameters?.length ? request.parameters.length : undefined,
  });

  /** Refuse: record the statement as denied and a policy.blocked record, then say why. */
  const refuse = async (
    classification: Classification,
    request: GateRequest,
    decision: Decision,
    blocked?: ClassifiedStatement,
  ): Promise<GateVerdict> => {
    const id = nextId();
    await record({ type: 'statement', data: statementData(blocked, request.sql, decision, id, request) });
    await record({
      type: 'policy.blocked',
      data: {
        statement_id: id,
        text: request.sql,
        rule: decision.rule,
        policy: decision.policy,
        reason: decision.reason,
        parse_error: classification.ok ? undefined : classification.error,
      },
    });
    deps.approvals?.blocked?.(info, request.sql, decision);
    const approval = decision.action === 'approve';
    return {
      action: 'refuse',
      error: {
        severity: 'ERROR',
        code: '42501',
        message: approval
          ? `hoop: approval required by rule "${decision.rule}"${decision.policy ? ` of policy "${decision.policy}"` : ''}`
          : `hoop: statement denied by rule "${decision.rule}"${decision.policy ? ` of policy "${decision.policy}"` : ''}`,
        detail: blocked ? `${decision.reason} — ${truncate(blocked.text)}` : decision.reason,
        hint: approval
          ? 'Approval requests are not enabled on this gateway yet.'
          : 'See what you may run: hoopctl connections; explain a decision: hoopctl policy test --sql "..."',
        routine: approval ? 'hoop_approval_required' : 'hoop_policy_denied',
      },
    };
  };

  /**
   * Masking: deny a statement that would leak a masked value (into storage, COPY, an inference), else
   * the result filter of each statement. Runs after policy allowed the message, before any record.
   */
  const planMasking = async (
    classification: Classification,
    request: GateRequest,
    decisions: readonly Decision[],
    decision: Decision,
  ): Promise<{ plans: StatementMasking[] } | { refuse: GateVerdict }> => {
    const statements = classification.ok ? classification.statements : [];
    if (!masking || statements.length === 0) return { plans: [] };
    const policies = deps.engine.policiesFor(info.identity, info.connection.name, deps.grants(info));
    const rules = statements.map((_, i) => resolveMaskRules(policies, (decisions[i] ?? decision).policy));
    let plans: StatementMasking[];
    try {
      plans = await masking.plan(request.sql, statements, rules, request.transactionStatus);
    } catch (err) {
      deps.onLogError(new Error(`masking catalog unavailable: ${(err as Error).message}`));
      return {
        refuse: {
          action: 'refuse',
          error: {
            severity: 'ERROR',
            code: '58000',
            message:
              'hoop: masked columns cannot be checked right now (the gateway cannot read the database catalog)',
            hint: 'This gateway fails closed for identities with masking rules. Ask the operator to check the connection.',
            routine: 'hoop_masking_unavailable',
          },
        },
      };
    }
    const denied = plans.findIndex((p) => p.deny);
    if (denied >= 0) {
      const deny = plans[denied]!.deny!;
      const reason =
        statements.length > 1
          ? `statement ${denied + 1} of ${statements.length}: ${deny.reason}`
          : deny.reason;
      return {
        refuse: await refuse(
          classification,
          request,
          { action: 'deny', policy: null, rule: deny.rule, reason },
          statements[denied],
        ),
      };
    }
    return { plans };
  };

  /** Attach masking filters to a forward verdict; remember them (evidence) and DDL (catalog reload). */
  const withMasking = (
    verdict: GateVerdict,
    plans: StatementMasking[],
    statements: readonly ClassifiedStatement[],
  ): GateVerdict => {
    if (verdict.action !== 'forward') return verdict;
    verdict.statementIds.forEach((id, i) => {
      const filter = plans[i]?.filter;
      if (filter) maskFilters.set(id, filter);
      if (masking && statements[i] && (statements[i]!.class === 'ddl' || statements[i]!.class === 'dcl')) {
        ddlInFlight.add(id);
        masking.invalidate();
      }
    });
    if (!plans.some((p) => p.filter)) return verdict;
    return { ...verdict, filters: verdict.statementIds.map((_, i) => plans[i]?.filter) };
  };

  return {
    recordRows: deps.recordRows,
    recordBytes: deps.recordBytes,

    async check(request: GateRequest): Promise<GateVerdict> {
      if (deps.revoked(info)) {
        return {
          action: 'refuse',
          error: {
            severity: 'ERROR',
            code: '28000',
            message: 'hoop: this identity has been revoked',
            routine: 'hoop_revoked',
          },
        };
      }
      // port to the protocol core: syntax, prepared statements, then names through the session's settings.
      let named: Awaited<ReturnType<typeof resolveNames>>;
      try {
        named = await resolveNames(request.sql);
      } catch (err) {
        deps.onLogError(new Error(`catalog unavailable: ${(err as Error).message}`));
        return { action: 'refuse', error: CATALOG_UNAVAILABLE };
      }
      const { syntactic, classification, effects } = named;
      const verdict = deps.engine.decideAll(info.identity, info.connection.name, classification, {
        grants: deps.grants(info),
      });
      const readOnly = verdict.decision.action !== 'deny' ? heldRefusal(effects, classification) : undefined;
      if (readOnly) return refuse(classification, request, readOnly);
      const decision = verdict.decision;
      // A statement needing approval is held at its Query or Execute (with its bound values), not at Parse.
      const held = decision.action === 'approve' && deps.approvals !== undefined;
      if (decision.action === 'deny' || (decision.action === 'approve' && !held)) {
        return refuse(classification, request, decision, verdict.statement);
      }
      // A Parse is only checked: the statement is recorded when it is executed.
      if (request.phase === 'parse') return { action: 'forward', statementIds: [] };
      const masks = await planMasking(classification, request, verdict.statements, decision);
      if ('refuse' in masks) return masks.refuse;
      if (held) {
        const stmts = classification.ok ? classification.statements : [];
        const heldIds = stmts.length > 0 ? stmts.map(() => nextId()) : [nextId()];
        const outcome = await deps.approvals!.hold({
          info,
          request,
          decision,
          statementIds: heldIds,
          primary: verdict.statement ? Math.max(0, stmts.indexOf(verdict.statement)) : 0,
          // Write-ahead: each statement's record carries the approval id before anything waits or runs.
          record: async (approvalId) => {
            const writes =
              stmts.length === 0
                ? [
                    record({
                      type: 'statement',
                      data: {
                        ...statementData(undefined, request.sql, decision, heldIds[0]!, request),
                        approval_id: approvalId,
                      },
                    }),
                  ]
                : stmts.map((stmt, i) =>
                    record({
                      type: 'statement',
                      data: {
                        ...statementData(
                          stmt,
                          stmt.text,
                          verdict.statements[i] ?? decision,
                          heldIds[i]!,
                          request,
                        ),
                        approval_id: approvalId,
                      },
                    }),
                  );
            return !(await Promise.all(writes)).includes(false);
          },
        });
        if (outcome.action === 'forward' && classification.ok) {
          sqlState.commit(syntactic);
          names.forwarded(outcome.statementIds, effects); // port to the protocol core
        }
        return withMasking(outcome, masks.plans, stmts);
      }
      if (classification.ok) sqlState.commit(syntactic);

      const statements = classification.ok ? classification.statements : [];
      const ids: string[] = [];
      const writes: Promise<boolean>[] = [];
      if (statements.length === 0) {
        const id = nextId();
        ids.push(id);
        writes.push(
          record({ type: 'statement', data: statementData(undefined, request.sql, decision, id, request) }),
        );
      }
      for (const [i, stmt] of statements.entries()) {
        const id = nextId();
        ids.push(id);
        const maskedColumns = masks.plans[i]?.masked;
        const data = statementData(stmt, stmt.text, decision, id, request);
        writes.push(
          record({
            type: 'statement',
            data: maskedColumns ? { ...data, masked_columns: maskedColumns } : data,
          }),
        );
      }
      // Write-ahead: every record of this message is durable before any of it reaches the database.
      const written = await Promise.all(writes);
      if (written.includes(false)) return { action: 'refuse', error: AUDIT_UNAVAILABLE };
      names.forwarded(ids, effects); // port to the protocol core
      return withMasking({ action: 'forward', statementIds: ids }, masks.plans, statements);
    },

    observe(event: SessionEvent): void {
      // port to the protocol core: every ErrorResponse and ReadyForQuery, in order, feed the settings model.
      if (event.type === 'error') names.error();
      else names.ready(event.status);
    },

    completed(statementId: string, outcome: StatementOutcome): void {
      names.completed(
        statementId,
        outcome.sqlstate || outcome.skipped ? { ok: false, skipped: outcome.skipped === true } : { ok: true },
      ); // port to the protocol core
      const maskFilter = maskFilters.get(statementId);
      maskFilters.delete(statementId);
      if (ddlInFlight.delete(statementId)) masking?.invalidate();
      const maskedColumns = maskFilter?.masked(outcome.result?.columns);
      deps.log
        .append({
          ...base,
          type: 'statement.result',
          data: {
            statement_id: statementId,
            tag: outcome.tag,
            rows: outcome.rows,
            bytes: outcome.bytes,
            duration_ms: outcome.durationMs,
            sqlstate: outcome.sqlstate,
            error: outcome.error,
            skipped: outcome.skipped || undefined,
            result: outcome.result,
            masked_columns: maskedColumns?.length ? maskedColumns : undefined,
          },
        })
        .catch((err: Error) => deps.onLogError(err));
    },
  };
}

function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function truncate(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}
