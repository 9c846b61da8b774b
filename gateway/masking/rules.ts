/**
 * Which masks apply to an identity, from the policies that match it on a connection. Pure.
 *
 * Precedence (docs/masking.md says the same to operators):
 * 1. A statement allowed by a granted time-boxed policy (`requestable: true`, e.g. break-glass) is masked
 *    by that policy's rules alone: the grant is the approved elevation, so a break-glass policy with no
 *    masking rules sees clear values while its grant lasts.
 * 2. Otherwise the masking rules of every matching policy apply together. A column named by several
 *    rules gets the mask that reveals least (redact > null > token > email-domain > partial). A policy
 *    without masking rules clears nothing: someone in both `auditors` (partial) and `bots` (redact) sees
 *    redacted values. Safe by default: more policies never mean fewer masks.
 * 3. `masking_fallback: deny` of any policy that contributes masking rules wins over `mask`;
 *    `inference_guard: true` of a policy guards the columns that policy masks.
 * Built in, whenever any masking rule applies: the statistics views' sample values (pg_stats and
 * friends hold real column values) are redacted.
 * Built in for every identity: other sessions' statement text (statementTextRules), unless a matching
 * policy has `statement_text: true`.
 */
import type { MaskingRuleConfig, PolicyConfig } from '../../src/shared/config/schema.js';
import { compileGlobs } from '../sql/glob.js';
import { STATEMENT_TEXT_COLUMNS as STATEMENT_TEXT_COLUMN_GLOBS } from '../sql/statement-text-sources.js';
import type { Tag, TagMasks } from './detectors.js';
import { type MaskName, stricterMask } from './masks.js';

export interface ColumnRule {
  mask: MaskName;
  /** The rule's name (its `name`, or `<policy>.masking[i]`). */
  rule: string;
  policy: string;
  /** Predicates, ORDER BY, GROUP BY and joins on this column are denied. */
  guard: boolean;
}

export interface MaskRules {
  /** False when nothing is masked for this identity: results pass untouched, nothing is analysed. */
  readonly active: boolean;
  /** The rule for a source column `schema.table.column` (lower-case), or undefined when it is clear. */
  column(id: string): ColumnRule | undefined;
  /** Tags of the value detectors, and the mask each triggers. */
  readonly tags: TagMasks;
  readonly fallback: 'mask' | 'deny';
  /** Some policy guards inference (used for predicates on values of unknown lineage). */
  readonly guard: boolean;
  /**
   * Predicates on values of unknown lineage are refused whatever the fallback: the statement reads other
   * sessions' statement text, which may be behind them (a function-backed view: pg_stat_statements).
   */
  readonly guardUnknown?: boolean;
  /** Stable key of this rule set, for caches. */
  readonly key: string;
}

export const STATISTICS_RULE = 'builtin-statistics';
const STATISTICS_COLUMNS = compileGlobs(
  [
    'pg_catalog.pg_stats*.most_common_vals',
    'pg_catalog.pg_stats*.most_common_elems',
    'pg_catalog.pg_stats*.histogram_bounds',
    'pg_catalog.pg_stats*.range_*',
    'pg_catalog.pg_stats*.most_common_base_*',
    'pg_catalog.pg_stats_ext*.exprs',
  ],
  true,
);

export const STATEMENT_TEXT_RULE = 'builtin-statement-text';
/**
 * Every identity reaches the database as the gateway's one role, and PostgreSQL shows a role the text
 * of every statement its sessions run, literals included: other identities' statements.
 */
const STATEMENT_TEXT_COLUMNS = compileGlobs(STATEMENT_TEXT_COLUMN_GLOBS, true);
const STATEMENT_TEXT: ColumnRule = {
  mask: 'redact',
  rule: STATEMENT_TEXT_RULE,
  policy: '(built in)',
  // A predicate on another session's text is an oracle for it (`where query like '%password%'`).
  guard: true,
};

/** May these policies' members read other sessions' statement text? */
export function mayReadStatementText(policies: readonly PolicyConfig[]): boolean {
  return policies.some((p) => p.statement_text);
}

/** The rules of an identity with no masking rule, for a statement that names statement-text sources. */
export const STATEMENT_TEXT_RULES: MaskRules = {
  active: true,
  column: (id) => (STATEMENT_TEXT_COLUMNS(id) ? STATEMENT_TEXT : undefined),
  tags: new Map(),
  fallback: 'mask',
  guard: false,
  guardUnknown: true,
  key: STATEMENT_TEXT_RULE,
};

/** An identity's rules for a statement that reads statement-text sources (STATEMENT_TEXT_RULES without any). */
export function guardingUnknown(rules: MaskRules): MaskRules {
  if (!rules.active) return STATEMENT_TEXT_RULES;
  return { ...rules, guardUnknown: true, key: `${rules.key}\0${STATEMENT_TEXT_RULE}` };
}

interface CompiledRule {
  matches: (id: string) => boolean;
  tags: readonly Tag[];
  rule: ColumnRule;
}

/** Column globs: `s.t.c` as written; `t.c` means `public.t.c`; `c` means that column of any table. */
export function normaliseColumnGlob(glob: string): string {
  const parts = glob.split('.');
  if (parts.length >= 3) return glob;
  if (parts.length === 2) return `public.${glob}`;
  return `*.*.${glob}`;
}

const NO_RULES: MaskRules = {
  active: false,
  column: () => undefined,
  tags: new Map(),
  fallback: 'mask',
  guard: false,
  key: '',
};

/**
 * The rules for one statement. `policies` are the policies matching the identity on the connection
 * (config order); `decidingPolicy` is the policy whose rule allowed the statement.
 */
/** Compiled rules by the policies (config objects, stable for the gateway's life) and the deciding policy. */
const compiledCache = new WeakMap<PolicyConfig, Map<string, MaskRules>>();

export function resolveMaskRules(
  policies: readonly PolicyConfig[],
  decidingPolicy: string | null,
): MaskRules {
  // Called for every statement: compile each combination once.
  const first = policies[0];
  if (!first) return NO_RULES;
  const key = `${decidingPolicy ?? ''}\0${policies.map((p) => p.name).join('\0')}`;
  let byKey = compiledCache.get(first);
  if (!byKey) {
    byKey = new Map();
    compiledCache.set(first, byKey);
  }
  let rules = byKey.get(key);
  if (!rules) {
    rules = compileMaskRules(policies, decidingPolicy);
    byKey.set(key, rules);
  }
  return rules;
}

function compileMaskRules(policies: readonly PolicyConfig[], decidingPolicy: string | null): MaskRules {
  const deciding = policies.find((p) => p.name === decidingPolicy);
  const contributing = deciding?.requestable ? [deciding] : policies;
  const compiled: CompiledRule[] = [];
  for (const policy of contributing) {
    policy.masking.forEach((m: MaskingRuleConfig, i: number) => {
      compiled.push({
        matches: m.columns ? compileGlobs(m.columns.map(normaliseColumnGlob), true) : () => false,
        tags: m.tags ?? [],
        rule: {
          mask: m.mask,
          rule: m.name ?? `${policy.name}.masking[${i}]`,
          policy: policy.name,
          guard: policy.inference_guard,
        },
      });
    });
  }
  if (compiled.length === 0) return NO_RULES;
  const withRules = contributing.filter((p) => p.masking.length > 0);
  const fallback = withRules.some((p) => p.masking_fallback === 'deny') ? 'deny' : 'mask';
  const guard = withRules.some((p) => p.inference_guard);

  const tags = new Map<Tag, { mask: MaskName; rule: string }>();
  for (const c of compiled) {
    for (const tag of c.tags) {
      const existing = tags.get(tag);
      if (!existing || stricterMask(existing.mask, c.rule.mask) === c.rule.mask)
        tags.set(tag, { mask: c.rule.mask, rule: c.rule.rule });
    }
  }
  const cache = new Map<string, ColumnRule | undefined>();
  const hideText = !mayReadStatementText(policies);
  const column = (id: string): ColumnRule | undefined => {
    if (cache.has(id)) return cache.get(id);
    let found: ColumnRule | undefined;
    for (const c of compiled) {
      if (!c.matches(id)) continue;
      if (!found) found = { ...c.rule };
      else {
        const mask = stricterMask(found.mask, c.rule.mask);
        found = {
          mask,
          rule: mask === found.mask ? found.rule : c.rule.rule,
          policy: mask === found.mask ? found.policy : c.rule.policy,
          guard: found.guard || c.rule.guard,
        };
      }
    }
    if (!found && STATISTICS_COLUMNS(id))
      found = { mask: 'redact', rule: STATISTICS_RULE, policy: '(built in)', guard };
    if (!found && hideText && STATEMENT_TEXT_COLUMNS(id)) found = STATEMENT_TEXT;
    cache.set(id, found);
    return found;
  };
  return {
    active: true,
    column,
    tags,
    fallback,
    guard,
    key: `${contributing.map((p) => p.name).join(',')}`,
  };
}
