/**
 * The gate every statement passes: classify (real parser, cached) → policy → write the record
 * durably → forward. Refusals are recorded too. If the record cannot be written, the statement
 * fails (fail closed) unless the operator chose fail-open, which start-up announced loudly.
 */
import { createHash } from 'node:crypto';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { Classification, ClassifiedStatement, Decision } from '../../src/shared/statement.js';
import type { NoticeFields } from '../pgwire/backend.js';
import type { PolicyEngine } from '../policy/engine.js';
import { classify } from '../sql/classify.js';
import { createSessionSqlState } from '../sql/session-sql.js';
import type { GateRequest, GateVerdict, SessionGate, StatementOutcome } from './gate.js';
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
}

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

  const statementData = (stmt: ClassifiedStatement | undefined, text: string, decision: Decision, id: string, request: GateRequest) => ({
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
  const refuse = async (classification: Classification, request: GateRequest, decision: Decision, blocked?: ClassifiedStatement): Promise<GateVerdict> => {
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

  return {
    recordRows: deps.recordRows,
    recordBytes: deps.recordBytes,

    async check(request: GateRequest): Promise<GateVerdict> {
      if (deps.revoked(info)) {
        return {
          action: 'refuse',
          error: { severity: 'ERROR', code: '28000', message: 'hoop: this identity has been revoked', routine: 'hoop_revoked' },
        };
      }
      const classification = sqlState.resolve(classify(request.sql));
      const verdict = deps.engine.decideAll(info.identity, info.connection.name, classification, {
        grants: deps.grants(info),
      });
      const decision = verdict.decision;
      if (decision.action !== 'allow') return refuse(classification, request, decision, verdict.statement);
      // A Parse is only checked: the statement is recorded when it is executed.
      if (request.phase === 'parse') return { action: 'forward', statementIds: [] };
      if (classification.ok) sqlState.commit(classification);

      const statements = classification.ok ? classification.statements : [];
      const ids: string[] = [];
      const writes: Promise<boolean>[] = [];
      if (statements.length === 0) {
        const id = nextId();
        ids.push(id);
        writes.push(record({ type: 'statement', data: statementData(undefined, request.sql, decision, id, request) }));
      }
      for (const stmt of statements) {
        const id = nextId();
        ids.push(id);
        writes.push(record({ type: 'statement', data: statementData(stmt, stmt.text, decision, id, request) }));
      }
      // Write-ahead: every record of this message is durable before any of it reaches the database.
      const written = await Promise.all(writes);
      if (written.includes(false)) return { action: 'refuse', error: AUDIT_UNAVAILABLE };
      return { action: 'forward', statementIds: ids };
    },

    completed(statementId: string, outcome: StatementOutcome): void {
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
