/**
 * hoopctl identities: who has used this gateway (people, service accounts, CI workloads), which policy
 * subjects never showed up or went idle, and revocation that ends open sessions within seconds.
 */
import type { Command } from 'commander';
import { parseDuration } from '../../shared/duration.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import type {
  IdentityChangeRequest,
  IdentityChangeResponse,
  IdentityListResponse,
} from '../../shared/identities-api.js';
import { apiRequest } from '../api.js';
import { c, info, printJson, printTable } from '../output.js';
import { connectGateway } from './sessions.js';

interface ListOptions {
  stale?: string;
  json?: boolean | string;
  gateway?: string;
}

interface ChangeOptions {
  reason?: string;
  issuer?: string;
  json?: boolean | string;
  gateway?: string;
}

const day = (iso: string | undefined) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

async function listIdentities(opts: ListOptions): Promise<void> {
  if (opts.stale !== undefined) {
    try {
      if (parseDuration(opts.stale) <= 0) throw new Error('must be longer than 0');
    } catch (err) {
      throw new CliError(`--stale: ${(err as Error).message}`, ExitCode.usage);
    }
  }
  const { target, token } = await connectGateway(opts);
  const query = opts.stale ? `?stale=${encodeURIComponent(opts.stale)}` : '';
  const answer = await apiRequest<IdentityListResponse>(target, 'GET', `/v1/identities${query}`, { token });
  if (opts.json) {
    printJson(answer, opts.json);
    return;
  }
  if (answer.identities.length === 0) {
    info(
      opts.stale
        ? `no identity has been idle for ${opts.stale} or more`
        : 'no identity has used this gateway yet',
    );
  } else {
    printTable(
      ['SUBJECT', 'KIND', 'FIRST SEEN', 'LAST SEEN', 'IDLE', 'STATUS', 'ISSUER'],
      answer.identities.map((i) => [
        i.subject,
        i.kind,
        day(i.first_seen),
        day(i.last_seen),
        `${i.idle_days}d`,
        i.revoked ? `revoked: ${i.revoked_reason ?? ''}` : i.stale ? 'stale' : 'active',
        i.issuer,
      ]),
    );
  }
  if (answer.policy_subjects.length > 0) {
    process.stdout.write(
      `\n${c.bold(opts.stale ? `Policy subjects never seen or idle for ${opts.stale} or more:` : 'Policy subjects never seen:')}\n`,
    );
    printTable(
      ['SUBJECT', 'STATUS', 'LAST SEEN', 'POLICIES'],
      answer.policy_subjects.map((s) => [
        s.subject,
        s.status === 'never_seen' ? 'never seen' : `idle ${s.idle_days}d`,
        day(s.last_seen),
        s.policies.join(', '),
      ]),
    );
  }
}

async function change(action: 'revoke' | 'restore', subject: string, opts: ChangeOptions): Promise<void> {
  if (action === 'revoke' && !opts.reason?.trim()) {
    throw new CliError('say why: --reason "..." (it is recorded)', ExitCode.usage);
  }
  const { target, token } = await connectGateway(opts);
  const body: IdentityChangeRequest = { subject, issuer: opts.issuer, reason: opts.reason };
  const answer = await apiRequest<IdentityChangeResponse>(target, 'POST', `/v1/identities/${action}`, {
    token,
    body,
  });
  if (opts.json) {
    printJson(answer, opts.json);
    return;
  }
  for (const i of answer.identities) {
    process.stdout.write(
      `${action === 'revoke' ? 'revoked' : 'restored'} ${i.subject} (${i.kind}, ${i.issuer})\n`,
    );
  }
  if (action === 'revoke') {
    process.stdout.write(
      `${answer.terminated_sessions} open session${answer.terminated_sessions === 1 ? '' : 's'} ended on this gateway` +
        ' (other replicas end theirs within seconds)\n',
    );
  }
}

export function registerIdentityCommands(program: Command): void {
  const identities = program
    .command('identities')
    .description('Identities seen (people, service accounts, CI workloads), stale accounts, revocation')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl identities                        # everyone seen, first/last seen, kind; policy subjects never seen
  hoopctl identities --stale 30d            # idle for 30 days or more, and policy subjects never seen or idle
  hoopctl identities revoke acme/legacy-etl --reason "pipeline decommissioned"
  hoopctl identities restore acme/legacy-etl

Listing needs the audit or admin role (a policy with audit: true or admin: true);
revoke and restore need the admin role.`,
    );

  identities
    .command('list', { isDefault: true })
    .description('List identities seen, and policy subjects never seen or idle (default)')
    .option('--stale <duration>', 'only identities idle for at least this long (e.g. 30d, 12h)')
    .option(
      '--json [fields]',
      'print JSON: { now, stale_days?, identities: [{ issuer, subject, kind, name?, groups, first_seen, last_seen, idle_days, stale, revoked, revoked_at?, revoked_reason?, policies }], policy_subjects: [{ subject, issuer, policies, status: never_seen|stale, last_seen?, idle_days? }] }',
    )
    .option('--gateway <url>', 'gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .action(async (opts: ListOptions) => {
      await listIdentities(opts);
    });

  identities
    .command('revoke')
    .description('Refuse this identity from now on and end its open sessions (admin)')
    .argument('<subject>', 'the identity subject, e.g. alice@example.com, ci-bot or acme/app')
    .requiredOption('--reason <text>', 'why (recorded, and shown to the revoked identity)')
    .option(
      '--issuer <url>',
      'only the identity from this issuer (needed when the subject signed in from several issuers)',
    )
    .option('--json [fields]', 'print JSON: { subject, identities: [...], terminated_sessions }')
    .option('--gateway <url>', 'gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
A revoked identity is refused even with a valid token (exit 3 for its hoopctl commands), and its open
sessions end: at once on this gateway, within seconds on the other replicas. Undo with restore.

Examples:
  hoopctl identities revoke ci-bot --reason "secret leaked in a build log"
  hoopctl identities revoke acme/app --issuer https://token.actions.githubusercontent.com --reason "repo archived"`,
    )
    .action(async (subject: string, opts: ChangeOptions) => {
      await change('revoke', subject, opts);
    });

  identities
    .command('restore')
    .description('Undo a revocation (admin)')
    .argument('<subject>', 'the identity subject')
    .option('--reason <text>', 'why (recorded)')
    .option('--issuer <url>', 'only the identity from this issuer')
    .option('--json [fields]', 'print JSON: { subject, identities: [...], terminated_sessions: 0 }')
    .option('--gateway <url>', 'gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl identities restore ci-bot --reason "secret rotated"`,
    )
    .action(async (subject: string, opts: ChangeOptions) => {
      await change('restore', subject, opts);
    });
}
