/**
 * Policy evaluation: identity x connection x classified statement -> allow | deny | approve. Pure:
 * built once from the config (globs compiled here), no sockets, no files.
 *
 * How a decision is made (docs/policy.md says the same to operators):
 * 1. A statement the classifier could not place is denied (rule `unplaceable`).
 * 2. Each policy that applies (who x connection; requestable ones only while granted) gives at most one
 *    verdict: its first rule, in order, that matches the statement.
 * 3. A granted (time-boxed) policy with a verdict decides: the grant is the approved elevation.
 * 4. Otherwise the strictest verdict of the standing policies wins: deny > approve > allow.
 * 5. No verdict at all: deny (rule `default-deny`).
 * An allow (or approve) verdict for a statement reaching a side channel the allow rule does not list in
 * `allow_side_channels` is a deny (rule `builtin-deny-list`).
 */

import type { ConnectionView, RuleView } from '../../src/shared/api.js';
import type {
  ConnectionConfig,
  GatewayConfig,
  PolicyConfig,
  RuleConfig,
} from '../../src/shared/config/schema.js';
import { formatDuration } from '../../src/shared/duration.js';
import { type Identity, identityKey, subjectOf } from '../../src/shared/identity.js';
import type {
  Classification,
  ClassifiedStatement,
  Decision,
  StatementClass,
  StatementFlag,
} from '../../src/shared/statement.js';
import { compileGlobs, compileNameGlobs } from '../sql/glob.js';
import { type AgentGuardrails, compileAgents, guardAgentDecision } from './agents.js';

export interface DecideOptions {
  /** Names of requestable policies granted to this identity right now (time-boxed access). */
  grants?: readonly string[];
}

/** The decision for a whole message, and the statement that decided it when it was not an allow. */
export interface MessageDecision {
  decision: Decision;
  /** The denied statement (or the first one needing approval). */
  statement?: ClassifiedStatement;
  /** One decision per statement, in order (empty when the text did not parse). */
  statements: Decision[];
}

export interface Roles {
  review: boolean;
  audit: boolean;
  admin: boolean;
}

/** Whether a decision for this identity can depend on what names mean (and so needs the catalog). */
export interface CatalogNeed {
  /** A rule narrows by relations or functions. */
  names: boolean;
  /** The verdict differs by class or by side channel: what a called function does matters. */
  functions: boolean;
}

/** Classes whose statements change data, schema, privileges or the server: a session allowed none is read-only. */
export const WRITING_CLASSES: readonly StatementClass[] = [
  'write',
  'ddl',
  'dcl',
  'admin',
  'copy-in',
  'procedural',
  'utility',
];

export interface PolicyEngine {
  /**
   * May this identity write on this connection at all: does any rule of its policies (granted ones
   * included) allow or approve a writing class? When not, its sessions run read-only upstream.
   */
  mayWrite(identity: Identity, connection: string, opts?: DecideOptions): boolean;
  /** Does the decision depend on names (relations, functions) or on what functions do? */
  catalogNeed(identity: Identity, connection: string, opts?: DecideOptions): CatalogNeed;
  /** The policies that apply to this identity on this connection, in config order. */
  policiesFor(identity: Identity, connection: string, grants?: readonly string[]): PolicyConfig[];
  decide(identity: Identity, connection: string, stmt: ClassifiedStatement, opts?: DecideOptions): Decision;
  decideAll(
    identity: Identity,
    connection: string,
    classification: Classification,
    opts?: DecideOptions,
  ): MessageDecision;
  roles(identity: Identity, opts?: DecideOptions): Roles;
  connectionsView(identity: Identity, opts?: DecideOptions): ConnectionView[];
  /** The configured connection of that name. */
  connection(name: string): ConnectionConfig | undefined;
  /** The agent guardrails (config `agents[]`) this identity falls under, if any. */
  agentFor(identity: Identity): AgentGuardrails | undefined;
}

type Action = 'allow' | 'deny' | 'approve';

interface CompiledRule {
  config: RuleConfig;
  action: Action;
  classes: ReadonlySet<StatementClass>;
  relations?: (name: string) => boolean;
  functions?: (name: string) => boolean;
  flags: readonly StatementFlag[];
  allowsSideChannel: (name: string) => boolean;
}

interface CompiledPolicy {
  config: PolicyConfig;
  connections: (name: string) => boolean;
  groups: ReadonlySet<string>;
  subjects: ReadonlySet<string>;
  rules: CompiledRule[];
}

export function createPolicyEngine(config: GatewayConfig): PolicyEngine {
  const issuers = config.identity.issuers.map((i) => i.issuer);
  const policies = config.policies.map((p) => compilePolicy(p, issuers));
  const connections = new Map(config.connections.map((c) => [c.name, c]));

  const applies = (policy: CompiledPolicy, identity: Identity, grants: readonly string[]): boolean =>
    isMember(policy, identity) && (!policy.config.requestable || grants.includes(policy.config.name));

  const applicable = (identity: Identity, connection: string, grants: readonly string[]) =>
    policies.filter((p) => applies(p, identity, grants) && p.connections(connection));

  // Agents (docs/agents.md): their policies' decisions, made stricter by the guardrails.
  const agentFor = compileAgents(config.agents ?? []);
  /** Every class of the statement is decided; the strictest verdict wins (deny > approve > allow). */
  const decide = (
    identity: Identity,
    connection: string,
    stmt: ClassifiedStatement,
    opts: DecideOptions = {},
  ): Decision => {
    const first = decideClass(identity, connection, stmt, opts);
    if (!stmt.alsoClasses?.length || first.action === 'deny') return first;
    const verdicts = [
      first,
      ...stmt.alsoClasses.map((c) => decideClass(identity, connection, { ...stmt, class: c }, opts)),
    ];
    const denied = verdicts.find((v) => v.action === 'deny');
    if (denied) return denied;
    const approvals = verdicts.filter((v) => v.action === 'approve');
    if (approvals.length === 0) return first;
    const rules = new Set(approvals.map((v) => `${v.policy}/${v.rule}`));
    if (rules.size > 1) {
      return {
        action: 'deny',
        policy: null,
        rule: 'mixed-approvals',
        reason: `its classes (${[stmt.class, ...stmt.alsoClasses].join(', ')}) need approval under different rules (${[...rules].join(', ')})`,
      };
    }
    return approvals[0]!;
  };

  /** One class: the policies' decision, made stricter by the agent guardrails. */
  const decideClass = (
    identity: Identity,
    connection: string,
    stmt: ClassifiedStatement,
    opts: DecideOptions = {},
  ): Decision => {
    const decision = decideByPolicy(identity, connection, stmt, opts);
    const agent = agentFor(identity);
    return agent ? guardAgentDecision(decision, stmt, agent) : decision;
  };

  const decideByPolicy = (
    identity: Identity,
    connection: string,
    stmt: ClassifiedStatement,
    opts: DecideOptions = {},
  ): Decision => {
    if (stmt.unplaceable) {
      return {
        action: 'deny',
        policy: null,
        rule: 'unplaceable',
        reason: `cannot tell what it does: ${stmt.unplaceable}`,
      };
    }
    const matching = applicable(identity, connection, opts.grants ?? []);
    for (const policy of matching) {
      if (!policy.config.requestable) continue;
      const granted = verdictOf(policy, stmt);
      if (granted) return granted;
    }
    const verdicts = matching
      .filter((p) => !p.config.requestable)
      .map((p) => verdictOf(p, stmt))
      .filter((v): v is Decision => v !== undefined);
    const strictest =
      verdicts.find((v) => v.action === 'deny') ??
      verdicts.find((v) => v.action === 'approve') ??
      verdicts.find((v) => v.action === 'allow');
    if (strictest) return strictest;
    return {
      action: 'deny',
      policy: null,
      rule: 'default-deny',
      reason:
        matching.length === 0
          ? `no policy gives this identity access to connection "${connection}"`
          : `no rule allows ${stmt.class} statements (${stmt.kind}) on "${connection}"`,
    };
  };

  return {
    mayWrite(identity, connection, opts = {}) {
      return applicable(identity, connection, opts.grants ?? []).some((p) =>
        p.rules.some((r) => r.action !== 'deny' && WRITING_CLASSES.some((c) => r.classes.has(c))),
      );
    },
    catalogNeed(identity, connection, opts = {}) {
      const matching = applicable(identity, connection, opts.grants ?? []);
      const names = matching.some((p) =>
        p.rules.some((r) => r.relations !== undefined || r.functions !== undefined),
      );
      if (names) return { names, functions: true };
      // Would a function's effect change the verdict? Probe every class a function can add, with and
      // without a side channel no allow rule could expect.
      const verdict = (cls: StatementClass, sideChannels: string[]) => {
        const d = decideClass(identity, connection, { ...PROBE, class: cls, sideChannels }, opts);
        return `${d.action}/${d.policy}/${d.rule}`;
      };
      const seen = new Set<string>();
      for (const cls of FUNCTION_CLASSES) {
        seen.add(verdict(cls, []));
        seen.add(verdict(cls, ['hoop:probe']));
      }
      return { names, functions: seen.size > 1 };
    },
    policiesFor: (identity, connection, grants = []) =>
      applicable(identity, connection, grants).map((p) => p.config),
    decide,
    decideAll(identity, connection, classification, opts = {}) {
      if (!classification.ok) {
        return {
          decision: {
            action: 'deny',
            policy: null,
            rule: 'unparseable',
            reason: `the SQL could not be parsed: ${classification.error}`,
          },
          statements: [],
        };
      }
      const statements = classification.statements;
      const decisions = statements.map((stmt) => decide(identity, connection, stmt, opts));
      return { ...combine(statements, decisions), statements: decisions };
    },
    roles(identity, opts = {}) {
      const mine = policies.filter((p) => applies(p, identity, opts.grants ?? [])).map((p) => p.config);
      return {
        review: mine.some((p) => p.review),
        audit: mine.some((p) => p.audit),
        admin: mine.some((p) => p.admin),
      };
    },
    connectionsView(identity, opts = {}) {
      const grants = opts.grants ?? [];
      const views: ConnectionView[] = [];
      for (const connection of config.connections) {
        const mine = applicable(identity, connection.name, grants);
        // Requestable policies this identity could be granted (hoopctl request), not granted now.
        const askable = policies.filter(
          (p) =>
            p.config.requestable &&
            isMember(p, identity) &&
            p.connections(connection.name) &&
            !grants.includes(p.config.name),
        );
        if (mine.length === 0 && askable.length === 0) continue;
        views.push({
          name: connection.name,
          ...(connection.description ? { description: connection.description } : {}),
          database: connection.database,
          policies: mine.map(policyView),
          requestable: askable.map((p) => ({
            ...policyView(p),
            max_duration: formatDuration(p.config.max_duration),
          })),
        });
      }
      return views;
    },
    connection: (name) => connections.get(name),
    agentFor,
  };
}

/** The classes a called function can give a statement (functions.ts), probed by catalogNeed. */
const FUNCTION_CLASSES: readonly StatementClass[] = [
  'read',
  'session',
  'write',
  'ddl',
  'dcl',
  'admin',
  'procedural',
];

const PROBE: ClassifiedStatement = {
  text: '',
  class: 'read',
  kind: 'SelectStmt',
  relations: [],
  functions: [],
  flags: [],
  sideChannels: [],
  fingerprint: '',
};

function policyView(p: CompiledPolicy): ConnectionView['policies'][number] {
  return {
    name: p.config.name,
    rules: p.config.rules.map(ruleView),
    masking: p.config.masking.map((m) => ({
      ...(m.columns ? { columns: m.columns } : {}),
      ...(m.tags ? { tags: [...m.tags] } : {}),
      mask: m.mask,
    })),
  };
}

/** A message's decision: any deny denies; else approvals (under one rule) ask for approval; else allow. */
function combine(
  statements: readonly ClassifiedStatement[],
  decisions: readonly Decision[],
): Omit<MessageDecision, 'statements'> {
  if (statements.length === 0) {
    return {
      decision: { action: 'allow', policy: null, rule: 'empty-query', reason: 'the query has no statements' },
    };
  }
  const where = (i: number) => (statements.length > 1 ? `statement ${i + 1} of ${statements.length}: ` : '');
  const denied = decisions.findIndex((d) => d.action === 'deny');
  if (denied >= 0) {
    const d = decisions[denied]!;
    return { decision: { ...d, reason: where(denied) + d.reason }, statement: statements[denied] };
  }
  const approvals = decisions.map((d, i) => [d, i] as const).filter(([d]) => d.action === 'approve');
  if (approvals.length > 0) {
    const [first, index] = approvals[0]!;
    const rules = new Set(approvals.map(([d]) => `${d.policy}/${d.rule}`));
    if (rules.size > 1) {
      // One approval would stand for statements whose rules name different approvers: refuse instead.
      return {
        decision: {
          action: 'deny',
          policy: null,
          rule: 'mixed-approvals',
          reason: `statements need approval under different rules (${[...rules].join(', ')}): send them separately`,
        },
        statement: statements[index],
      };
    }
    return { decision: { ...first, reason: where(index) + first.reason }, statement: statements[index] };
  }
  if (decisions.length === 1) return { decision: decisions[0]! };
  const rules = [...new Set(decisions.map((d) => d.rule))];
  return {
    decision: {
      action: 'allow',
      policy: decisions[0]!.policy,
      rule: rules.join(', '),
      reason: `all ${decisions.length} statements allowed`,
    },
  };
}

function isMember(policy: CompiledPolicy, identity: Identity): boolean {
  return policy.subjects.has(identityKey(identity)) || identity.groups.some((g) => policy.groups.has(g));
}

/** The policy's first matching rule as a decision, or undefined when no rule matches. */
function verdictOf(policy: CompiledPolicy, stmt: ClassifiedStatement): Decision | undefined {
  const rule = policy.rules.find((r) => ruleMatches(r, stmt));
  if (!rule) return undefined;
  const policyName = policy.config.name;
  const ruleName = rule.config.name;
  if (rule.action === 'deny') {
    return {
      action: 'deny',
      policy: policyName,
      rule: ruleName,
      reason: `rule "${ruleName}" of policy "${policyName}" denies ${stmt.class} statements${narrowedTo(rule, stmt)}`,
    };
  }
  const blocked = stmt.sideChannels.filter(
    (name) => rule.action !== 'allow' || !rule.allowsSideChannel(name),
  );
  if (blocked.length > 0) {
    return {
      action: 'deny',
      policy: null,
      rule: 'builtin-deny-list',
      reason: `reaches the side channel${blocked.length > 1 ? 's' : ''} ${blocked.join(', ')} (an allow rule may list ${blocked.length > 1 ? 'them' : 'it'} in allow_side_channels)`,
    };
  }
  if (rule.action === 'allow') {
    return {
      action: 'allow',
      policy: policyName,
      rule: ruleName,
      reason: `rule "${ruleName}" of policy "${policyName}" allows ${stmt.class} statements`,
    };
  }
  return {
    action: 'approve',
    policy: policyName,
    rule: ruleName,
    reason: `rule "${ruleName}" of policy "${policyName}" requires approval for ${stmt.class} statements${narrowedTo(rule, stmt)}`,
    approvers: rule.config.approvers ?? [],
    approvalsRequired: rule.config.approvals_required,
    timeoutMs: rule.config.timeout,
  };
}

/** ` on secret.customers`: which of the statement's relations (functions) made a narrowing rule match. */
function narrowedTo(rule: CompiledRule, stmt: ClassifiedStatement): string {
  const names = [
    ...(rule.relations ? stmt.relations.filter(rule.relations) : []),
    ...(rule.functions ? stmt.functions.filter(rule.functions) : []),
  ];
  if (names.length > 0) return ` on ${names.join(', ')}`;
  // Matched only because a function changes what no relation names (see ruleMatches).
  if (rule.relations && stmt.flags.includes('function-write'))
    return ' (a function call changes something no relation of the statement names)';
  return '';
}

/**
 * Class in the list, and every narrowing holds. Relations and functions narrow an allow rule only when
 * ALL the statement's relations (functions) match — `allow read on public.orders` must not let a join
 * with another table through — and a deny or approve rule when ANY does, so it catches more. A rule
 * that narrows by relations (functions) does not match a statement touching none.
 *
 * A change a function makes (`function-write`: `setval('public.orders_id_seq', 1)`, `lo_unlink`, code
 * the gateway cannot read) names no relation to check: an allow rule narrowed only by relations does
 * not cover it (one that also lists the functions does), and a deny or approve rule narrowed by
 * relations catches it.
 */
function ruleMatches(rule: CompiledRule, stmt: ClassifiedStatement): boolean {
  if (!rule.classes.has(stmt.class)) return false;
  const narrowing = rule.action === 'allow' ? 'every' : 'some';
  if (rule.relations) {
    const unnamed = stmt.flags.includes('function-write');
    const named = stmt.relations.length > 0 && stmt.relations[narrowing](rule.relations);
    const matches =
      rule.action === 'allow' ? named && (!unnamed || rule.functions !== undefined) : named || unnamed;
    if (!matches) return false;
  }
  if (rule.functions && !(stmt.functions.length > 0 && stmt.functions[narrowing](rule.functions)))
    return false;
  return rule.flags.every((f) => stmt.flags.includes(f));
}

/** Subjects match by issuer and subject: a colliding `sub` of another issuer is someone else. */
function compilePolicy(config: PolicyConfig, issuers: readonly string[]): CompiledPolicy {
  const subjects = new Set<string>();
  for (const entry of config.subjects) {
    const found = subjectOf(entry, issuers);
    if (typeof found !== 'string') subjects.add(identityKey(found)); // an ambiguous entry matches no one
  }
  return {
    config,
    connections: compileGlobs(config.connections),
    groups: new Set(config.groups),
    subjects,
    rules: config.rules.map(compileRule),
  };
}

function compileRule(config: RuleConfig): CompiledRule {
  const action: Action = config.allow ? 'allow' : config.approve ? 'approve' : 'deny';
  return {
    config,
    action,
    classes: new Set(config[action] ?? []),
    relations: config.relations ? relationMatcher(config.relations, action) : undefined,
    functions: config.functions ? functionMatcher(config.functions, action) : undefined,
    flags: config.flags ?? [],
    allowsSideChannel: compileGlobs(config.allow_side_channels ?? [], true),
  };
}

/**
 * Relation globs are SQL names (`orders` means `public.orders`; `"Secrets"` keeps its case). An allow
 * rule matches exactly; deny and approve rules also across case, so they catch `public."SECRETS"` too.
 */
function relationMatcher(globs: readonly string[], action: Action): (name: string) => boolean {
  return compileNameGlobs(globs, { defaultSchema: 'public', caseInsensitive: action !== 'allow' });
}

/** Function globs with a schema match the resolved name; without one, the name in any schema. */
function functionMatcher(globs: readonly string[], action: Action): (name: string) => boolean {
  return compileNameGlobs(globs, { caseInsensitive: action !== 'allow' });
}

function ruleView(rule: RuleConfig): RuleView {
  const action: Action = rule.allow ? 'allow' : rule.approve ? 'approve' : 'deny';
  return {
    name: rule.name,
    action,
    classes: [...(rule[action] ?? [])],
    ...(rule.relations ? { relations: rule.relations } : {}),
    ...(rule.functions ? { functions: rule.functions } : {}),
    ...(rule.flags ? { flags: [...rule.flags] } : {}),
    ...(action === 'approve'
      ? { approvers: rule.approvers ?? [], timeout: formatDuration(rule.timeout) }
      : {}),
  };
}
