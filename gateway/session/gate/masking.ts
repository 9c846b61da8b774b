/**
 * Check: masking. Which masking rules apply to each statement (the deciding policy's), and for
 * statements with rules, the masking plan: deny what would leak a masked value, else the result
 * filter. Sessions whose identity has no rule that can apply never build a planner at all. The plan is
 * synchronous unless the catalog must be (re)loaded.
 */
import type { ClassifiedStatement, Decision } from '../../../src/shared/statement.js';
import type { StatementTextReaders } from '../../catalog/statement-text.js';
import type { GateRequest } from '../../contracts/gate.js';
import type { NameView } from '../../contracts/names.js';
import type { SessionInfo } from '../../contracts/session.js';
import { resolveMaskRules, type SessionMasking, type StatementMasking } from '../../masking/index.js';
import {
  guardingUnknown,
  type MaskRules,
  mayReadStatementText,
  STATEMENT_TEXT_RULES,
} from '../../masking/rules.js';
import type { PolicyEngine } from '../../policy/engine.js';
import { LruCache } from '../../sql/lru.js';
import { namesAnything, type StatementTextNeed, statementTextNeed } from './statement-text.js';

/** The catalog's statement-text readers: now, after a load, or undefined without a catalog. */
export type ReadersSource = () => StatementTextReaders | Promise<StatementTextReaders> | undefined;

export type MaskingResult =
  | { plans: StatementMasking[] }
  | { deny: { index: number; rule: string; reason: string } }
  | { unavailable: Error };

export class MaskingCheck {
  private session: SessionMasking | undefined;
  private readonly rules = new LruCache<string, MaskRules>(64);

  constructor(
    private readonly engine: PolicyEngine,
    private readonly info: SessionInfo,
    private readonly factory: ((info: SessionInfo) => SessionMasking | undefined) | undefined,
    private readonly readers: ReadersSource = () => undefined,
  ) {}

  /** The schema may have changed (DDL through this session). */
  invalidate(): void {
    this.session?.invalidate();
  }

  get active(): boolean {
    return this.session !== undefined;
  }

  plan(
    request: GateRequest,
    statements: readonly ClassifiedStatement[],
    views: readonly NameView[],
    decisions: readonly Decision[],
    decision: Decision,
    grants: readonly string[],
  ): MaskingResult | Promise<MaskingResult> {
    if (!this.factory || statements.length === 0) return { plans: [] };
    const text = this.statementText(statements, grants);
    if (text instanceof Promise)
      return text.then(
        (need) => this.planWith(request, statements, views, decisions, decision, grants, need),
        (err: Error) => ({ unavailable: err }),
      );
    return this.planWith(request, statements, views, decisions, decision, grants, text);
  }

  /**
   * Views and user functions passing the text on come from the catalog, loaded only when something is
   * named. One pass over the catalog's readers (they include the sources): a statement that names a
   * source and also calls a user function reading it is refused for the call, as the call alone is.
   */
  private statementText(
    statements: readonly ClassifiedStatement[],
    grants: readonly string[],
  ): StatementTextNeed | Promise<StatementTextNeed> {
    const policies = () => this.policies(grants);
    if (!namesAnything(statements) || mayReadStatementText(policies())) return undefined;
    const readers = this.readers();
    if (readers instanceof Promise) return readers.then((r) => statementTextNeed(statements, policies, r));
    return statementTextNeed(statements, policies, readers);
  }

  private planWith(
    request: GateRequest,
    statements: readonly ClassifiedStatement[],
    views: readonly NameView[],
    decisions: readonly Decision[],
    decision: Decision,
    grants: readonly string[],
    text: StatementTextNeed,
  ): MaskingResult | Promise<MaskingResult> {
    if (text && text !== 'mask') return text;
    let rules = statements.map((_, i) => this.rulesFor((decisions[i] ?? decision).policy, grants));
    if (!rules.some((r) => r.active)) {
      if (!text) return { plans: [] };
      rules = statements.map(() => STATEMENT_TEXT_RULES);
    } else if (text) rules = rules.map(guardingUnknown);
    this.session ??= this.factory?.(this.info);
    if (!this.session) return { plans: [] };
    let planned: StatementMasking[] | Promise<StatementMasking[]>;
    try {
      planned = this.session.plan(request.sql, statements, rules, views, request.portalRuns);
    } catch (err) {
      return { unavailable: err as Error };
    }
    if (planned instanceof Promise)
      return planned.then(
        (plans) => judged(plans, statements.length),
        (err: Error) => ({ unavailable: err }),
      );
    return judged(planned, statements.length);
  }

  private policies(grants: readonly string[]) {
    return this.engine.policiesFor(this.info.identity, this.info.connection.name, grants);
  }

  private rulesFor(policy: string | null, grants: readonly string[]): MaskRules {
    const key = `${grants.join(',')}\0${policy ?? ''}`;
    let rules = this.rules.get(key);
    if (!rules) {
      const policies = this.policies(grants);
      rules = resolveMaskRules(policies, policy);
      this.rules.set(key, rules);
    }
    return rules;
  }
}

function judged(plans: StatementMasking[], count: number): MaskingResult {
  const index = plans.findIndex((p) => p.deny);
  if (index < 0) return { plans };
  const deny = plans[index]!.deny!;
  const reason = count > 1 ? `statement ${index + 1} of ${count}: ${deny.reason}` : deny.reason;
  return { deny: { index, rule: deny.rule, reason } };
}
