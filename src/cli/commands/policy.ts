/**
 * hoopctl policy test: what the gateway would decide for some SQL, under which rule, and how each
 * statement was classified — without touching a database.
 *
 * With --config it works offline and is the one place the CLI imports gateway/ code (the parser and
 * the policy engine, loaded dynamically so other commands never pay for them): evaluating a policy file
 * needs exactly the gateway's engine, and a copy would drift. Without --config it asks the gateway,
 * for the caller's own identity, or — admins and auditors — for the --identity and --groups given.
 */
import type { Command } from 'commander';
import { loadConfigFile } from '../../shared/config/load.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { type Identity, subjectOf } from '../../shared/identity.js';
import type { PolicyExplanation } from '../../shared/policy-explain.js';
import { apiRequest } from '../api.js';
import { c, printJson } from '../output.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';

interface TestOptions {
  identity?: string;
  issuer?: string;
  groups?: string;
  connection: string;
  sql?: string;
  config?: string;
  grants?: string;
  gateway?: string;
  json?: boolean | string;
}

export function registerPolicyCommands(program: Command): void {
  const policy = program
    .command('policy')
    .description('Check what policy allows')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl policy test --connection prod-db --sql "delete from orders"            # as yourself, online
  hoopctl policy test --config gateway.yaml --identity bot --groups ci-deploy \\
      --connection prod-db --sql "drop table customers"                         # offline
`,
    );
  policy
    .command('test')
    .description(
      'Explain the decision for some SQL: allow, deny or approval, which rule, and how it was classified',
    )
    .requiredOption('--connection <name>', 'connection name')
    .option('--sql <text>', 'the SQL (several statements allowed); default: read from stdin')
    .option('--config <file>', 'evaluate offline against this gateway.yaml instead of asking the gateway')
    .option(
      '--identity <subject>',
      'subject to evaluate as, or issuer#subject (offline, or online with the admin or audit role)',
    )
    .option('--issuer <url>', "that subject's issuer (default: the only configured issuer)")
    .option('--groups <a,b>', 'groups of that identity, comma-separated')
    .option('--grants <p,q>', 'requestable policies granted right now, comma-separated (with --config)')
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .option('--json [fields]', 'print the explanation as JSON (see docs/policy.md for the shape)')
    .addHelpText(
      'after',
      `
Examples:
  # offline, against a config file
  hoopctl policy test --config gateway.yaml --identity alice --groups engineering \\
      --connection prod-db --sql "delete from orders where id = 1"
  # through the gateway, for yourself
  hoopctl policy test --connection prod-db --sql "select * from customers"
  # through the gateway, for someone else (admin or audit role)
  hoopctl policy test --identity alice --groups engineering --connection prod-db --sql "delete from orders"
  # in a script
  hoopctl policy test --config gateway.yaml --identity ci --groups ci-deploy \\
      --connection prod-db --json < migrate.sql

Exit codes: 0 allowed or approval required, 4 denied, 2 usage error.
`,
    )
    .action(async (options: TestOptions) => {
      const sql = options.sql ?? (await readStdin());
      const explanation = options.config ? await testOffline(options, sql) : await testOnline(options, sql);
      if (options.json) printJson(explanation, options.json);
      else printExplanation(explanation);
      if (explanation.decision === 'deny') process.exitCode = ExitCode.denied;
    });
}

async function testOffline(options: TestOptions, sql: string): Promise<PolicyExplanation> {
  if (!options.identity) throw new CliError('--identity is required with --config', ExitCode.usage);
  let config: ReturnType<typeof loadConfigFile>;
  try {
    config = loadConfigFile(options.config!);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.usage);
  }
  if (!config.connections.some((conn) => conn.name === options.connection)) {
    throw new CliError(`${options.config} has no connection named "${options.connection}"`, ExitCode.usage);
  }
  // The documented exception to "the CLI never imports gateway/": see the module comment.
  const [{ loadSqlParser }, { createPolicyEngine }, { explain }] = await Promise.all([
    import('../../../gateway/sql/parser.js'),
    import('../../../gateway/policy/engine.js'),
    import('../../../gateway/policy/explain.js'),
  ]);
  await loadSqlParser();
  const engine = createPolicyEngine(config);
  const issuers = config.identity.issuers.map((i) => i.issuer);
  return explainUnderIssuers(options, issuers, (identity) =>
    explain(engine, identity, options.connection, sql, { grants: list(options.grants) }),
  );
}

/**
 * Policy subjects name an issuer and a subject, so the identity evaluated needs both. A bare subject with
 * several issuers configured is evaluated under each: one answer (naming no issuer) when they all agree.
 */
function explainUnderIssuers(
  options: TestOptions,
  issuers: string[],
  explainAs: (identity: Identity) => PolicyExplanation,
): PolicyExplanation {
  const given = options.identity!;
  const bare = !options.issuer && !/^https?:\/\/[^#]+#/.test(given) && issuers.length > 1;
  const candidates = bare
    ? issuers.map((issuer) => ({ issuer, subject: given }))
    : [options.issuer ? { issuer: options.issuer, subject: given } : given];
  const explanations = candidates.map((candidate) => {
    const named = subjectOf(candidate, issuers);
    if (typeof named === 'string')
      throw new CliError(`--identity: ${named} (or give --issuer)`, ExitCode.usage);
    return explainAs({ ...named, groups: list(options.groups), kind: 'human' });
  });
  const verdict = (e: PolicyExplanation) => JSON.stringify({ ...e, identity: undefined });
  const [first] = explanations as [PolicyExplanation, ...PolicyExplanation[]];
  if (explanations.some((e) => verdict(e) !== verdict(first))) {
    throw new CliError(
      `--identity: the decision for "${given}" depends on its issuer (${issuers.length} are configured): give --issuer, or write issuer#subject`,
      ExitCode.usage,
    );
  }
  return bare
    ? { ...first, identity: { subject: first.identity.subject, groups: first.identity.groups } }
    : first;
}

async function testOnline(options: TestOptions, sql: string): Promise<PolicyExplanation> {
  if (options.grants) {
    throw new CliError(
      '--grants needs --config: the gateway knows the grants in force itself',
      ExitCode.usage,
    );
  }
  if (options.groups && !options.identity) {
    throw new CliError('--groups needs --identity (the subject to evaluate as)', ExitCode.usage);
  }
  const target = resolveGateway(options.gateway);
  const token = await getAccessToken(target);
  // --identity without --config: the gateway evaluates for that subject (admin or audit role needed).
  const as = options.identity
    ? asIdentity(options.identity, options.issuer, list(options.groups))
    : undefined;
  return apiRequest<PolicyExplanation>(target, 'POST', '/v1/policy/test', {
    token,
    body: { connection: options.connection, sql, ...(as ? { as } : {}) },
  });
}

/** `--identity issuer#subject` or `--identity subject --issuer url`: the issuer travels with the subject. */
function asIdentity(identity: string, issuer: string | undefined, groups: string[]) {
  const hash = identity.indexOf('#'); // issuer identifiers have no fragment
  if (!issuer && hash > 0)
    return { issuer: identity.slice(0, hash), subject: identity.slice(hash + 1), groups };
  return issuer ? { issuer, subject: identity, groups } : { subject: identity, groups };
}

function printExplanation(e: PolicyExplanation): void {
  const colour = e.decision === 'allow' ? c.green : e.decision === 'deny' ? c.red : c.yellow;
  const label = e.decision === 'approve' ? 'APPROVAL REQUIRED' : e.decision.toUpperCase();
  const out: string[] = [];
  out.push(`${c.bold('decision:')} ${colour(c.bold(label))}`);
  out.push(`${c.bold('rule:')}     ${e.rule}`);
  out.push(`${c.bold('policy:')}   ${e.policy ?? '(none: the gateway itself)'}`);
  out.push(`${c.bold('reason:')}   ${e.reason}`);
  if (e.approvers) {
    const wait = e.timeoutMs !== undefined ? `, expires after ${Math.round(e.timeoutMs / 60_000)}m` : '';
    out.push(`${c.bold('approvers:')} ${e.approvers.join(', ')} (${e.approvalsRequired ?? 1} needed${wait})`);
  }
  out.push(
    `${c.bold('as:')}       ${e.identity.subject} [${e.identity.groups.join(', ')}] on ${e.connection}`,
  );
  out.push(`${c.bold('policies:')} ${e.policies.length ? e.policies.join(', ') : '(none apply)'}`);
  if (e.parseError) out.push(`${c.bold('parse error:')} ${e.parseError}`);
  e.statements.forEach((s, i) => {
    const own = s.decision === 'allow' ? c.green : s.decision === 'deny' ? c.red : c.yellow;
    out.push('');
    out.push(`${c.bold(`statement ${i + 1}:`)} ${oneLine(s.text)}`);
    out.push(`  class:     ${s.class} (${s.kind})`);
    if (s.relations.length) out.push(`  relations: ${s.relations.join(', ')}`);
    if (s.functions.length) out.push(`  functions: ${s.functions.join(', ')}`);
    if (s.flags.length) out.push(`  flags:     ${s.flags.join(', ')}`);
    if (s.sideChannels.length) out.push(`  side channels: ${s.sideChannels.join(', ')}`);
    if (s.unplaceable) out.push(`  unplaceable: ${s.unplaceable}`);
    out.push(`  decision:  ${own(s.decision)} by ${s.rule}${s.policy ? ` (${s.policy})` : ''}`);
  });
  process.stdout.write(`${out.join('\n')}\n`);
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function oneLine(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new CliError('give the SQL with --sql "..." or on stdin', ExitCode.usage);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
