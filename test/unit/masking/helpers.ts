/** A catalog like the demo database's, built from rows as the real query returns them. */

import { NO_NAMES } from '../../../gateway/contracts/names.js';
import {
  buildCatalog,
  type Catalog,
  type CatalogRows,
  type CatalogSource,
} from '../../../gateway/masking/catalog.js';
import { SessionMasking, type StatementMasking } from '../../../gateway/masking/index.js';
import { resolveMaskRules } from '../../../gateway/masking/rules.js';
import { effectOf } from '../../../gateway/session/protocol.js';
import type { SessionModel } from '../../../gateway/session/session-model.js';
import { classify } from '../../../gateway/sql/classify.js';
import { resolveNames } from '../../../gateway/sql/session-sql.js';
import type { PolicyConfig } from '../../../src/shared/config/schema.js';
import { policySchema } from '../../../src/shared/config/schema.js';

const TEXT = '25';
const INT = '23';

function table(
  oid: number,
  schema: string,
  name: string,
  columns: [string, string][],
  kind = 'r',
  viewdef?: string,
) {
  return columns.map(([col, type], i) => [
    String(oid),
    schema,
    name,
    kind,
    String(i + 1),
    col,
    type,
    i === 0 ? (viewdef ?? null) : null,
  ]);
}

export const BUILTINS = [
  'lower',
  'upper',
  'count',
  'string_agg',
  'array_agg',
  'row_to_json',
  'to_jsonb',
  'to_json',
  'format',
  'substring',
  'substr',
  'concat',
  'set_config',
  'pg_notify',
  'generate_series',
  'now',
  'max',
  'min',
  'json_agg',
  'jsonb_build_object',
  'unnest',
  'length',
  'md5',
  'current_setting',
  'query_to_xml',
  'json_build_object',
  'left',
  'right',
  'row_number',
];

/** Built-in operators the tests use (every one runs a built-in function). */
export const BUILTIN_OPERATORS = [
  '=',
  '<>',
  '<',
  '>',
  '<=',
  '>=',
  '||',
  '~~',
  '!~~',
  '~~*',
  '+',
  '-',
  '->',
  '->>',
];

/** Built-in types (pg_catalog), as the types query returns them: oid, schema, name, own code, cast into, inner. */
export const BUILTIN_TYPES: [string, string][] = [
  ['16', 'bool'],
  ['19', 'name'],
  ['20', 'int8'],
  ['23', 'int4'],
  ['25', 'text'],
  ['114', 'json'],
  ['701', 'float8'],
  ['1043', 'varchar'],
  ['1184', 'timestamptz'],
  ['2277', 'anyarray'],
  ['3802', 'jsonb'],
];

export function demoRows(): CatalogRows {
  return {
    relations: [
      ...table(16001, 'public', 'customers', [
        ['id', INT],
        ['name', TEXT],
        ['email', TEXT],
        ['ssn', TEXT],
        ['card_pan', TEXT],
        ['country', TEXT],
      ]),
      ...table(16002, 'public', 'orders', [
        ['id', INT],
        ['customer_id', INT],
        ['total_cents', INT],
        ['created_at', '1184'],
      ]),
      ...table(
        16003,
        'public',
        'customer_view',
        [
          ['who', TEXT],
          ['ssn', TEXT],
        ],
        'v',
        ' SELECT customers.name AS who,\n    customers.ssn\n   FROM customers;',
      ),
      ...table(
        16004,
        'public',
        'nested_view',
        [
          ['who', TEXT],
          ['digits', TEXT],
        ],
        'v',
        ' SELECT who, lower(ssn) AS digits FROM customer_view;',
      ),
      ...table(16005, 'public', 'customers_2024', [
        ['id', INT],
        ['name', TEXT],
        ['email', TEXT],
        ['ssn', TEXT],
        ['card_pan', TEXT],
        ['country', TEXT],
      ]),
      ...table(
        11001,
        'pg_catalog',
        'pg_stats',
        [
          ['tablename', '19'],
          ['attname', '19'],
          ['most_common_vals', '2277'],
        ],
        'v',
      ),
    ],
    inherits: [['16005', '16001']],
    functions: [...BUILTINS.map((f) => [f, 't']), ['leak', 'f']],
    operators: BUILTIN_OPERATORS.map((o) => [o, 't']),
    types: BUILTIN_TYPES.map(([oid, name]) => [oid, 'pg_catalog', name, 'f', 'f', '']),
    implicitCasts: [['0']],
  };
}

export const demoCatalog = (): Catalog => buildCatalog(demoRows());

export function staticSource(catalog: Catalog = demoCatalog()): CatalogSource {
  return { get: async () => catalog, invalidate: () => {}, close: () => {} };
}

export function policy(yaml: Partial<PolicyConfig> & { name: string }): PolicyConfig {
  return policySchema.parse(yaml);
}

export const ENGINEERS = policy({
  name: 'engineers',
  groups: ['engineering'],
  masking: [
    { name: 'pan-partial', columns: ['public.customers.card_pan'], mask: 'partial' },
    { name: 'ssn-partial', columns: ['public.customers.ssn'], mask: 'partial' },
    { name: 'email-domain', columns: ['public.customers.email'], mask: 'email-domain' },
  ],
});

export const TOKEN_KEY = Buffer.from('test-token-key-0123456789');

/**
 * Plan one message for an identity matching `policies`. With a session model, the message sees its
 * names (and its own earlier statements' PREPARE/DECLARE), and every statement then succeeds in it.
 */
export async function planSql(
  sql: string,
  policies: PolicyConfig[] = [ENGINEERS],
  session = new SessionMasking({ catalog: staticSource(), ctx: { tokenKey: TOKEN_KEY } }),
  deciding: string | null = policies[0]?.name ?? null,
  model?: SessionModel,
): Promise<StatementMasking[]> {
  const c = classify(sql);
  if (!c.ok) throw new Error(c.error);
  const rules = c.statements.map(() => resolveMaskRules(policies, deciding));
  const { views } = resolveNames(c, model ? model.view(0) : NO_NAMES);
  const plans = await session.plan(sql, c.statements, rules, views);
  if (model) {
    for (const stmt of c.statements) {
      const effect = effectOf(stmt, model);
      if (effect) model.settle(model.expect(effect, 0), 'ok');
    }
  }
  return plans;
}

/** Which output columns are masked, as `name:mask`. */
export async function maskedOf(sql: string, policies?: PolicyConfig[]): Promise<string[] | string> {
  const [plan] = await planSql(sql, policies);
  if (plan?.deny) return `deny:${plan.deny.rule}`;
  return (plan?.filter?.masked() ?? []).map((m) => `${m.column}:${m.mask}`);
}
