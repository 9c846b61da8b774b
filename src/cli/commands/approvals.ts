/**
 * Reviewers' commands: `hoopctl approvals`, `approve`, `reject`; and time-boxed access:
 * `hoopctl request`, `requests`. Statement approvals have numeric ids (42); access requests have
 * ids `access-<n>`; `approve` and `reject` take either.
 */
import type { Command } from 'commander';
import type {
  AccessRequestBody,
  AccessRequestListResponse,
  AccessRequestView,
  ApprovalListResponse,
  ApprovalView,
  DecideRequest,
  DecideResponse,
} from '../../shared/api.js';
import { parseDuration } from '../../shared/duration.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget } from '../api.js';
import { c, printable, printJson } from '../output.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';

interface GatewayOption {
  gateway?: string;
}

async function session(options: GatewayOption): Promise<{ target: GatewayTarget; token: string }> {
  const target = resolveGateway(options.gateway);
  return { target, token: await getAccessToken(target) };
}

function checkId(id: string): string {
  const trimmed = id.trim().replace(/^#/, '');
  if (!/^(\d+|access-\d+)$/i.test(trimmed)) {
    throw new CliError(`"${id}" is not a request id (a number such as 42, or access-3)`, ExitCode.usage);
  }
  return trimmed.toLowerCase();
}

const indent = (text: string, by = '    ') =>
  text
    .split('\n')
    .map((l) => `${by}${l}`)
    .join('\n');

function when(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '';
}

function statusColour(status: string): string {
  if (status === 'pending') return c.yellow(status);
  if (status === 'approved' || status === 'used') return c.green(status);
  return c.red(status);
}

export function printApproval(a: ApprovalView): void {
  const who =
    a.requester.name && a.requester.name !== a.requester.subject
      ? printable(`${a.requester.subject} (${a.requester.name})`)
      : printable(a.requester.subject);
  const lines = [
    `${c.bold(`#${a.id}`)}  ${statusColour(a.status)}  ${who} on ${a.connection}${a.mode === 'deferred' ? '  (filed with --no-wait)' : ''}`,
    `    rule ${a.rule} of policy ${a.policy}: needs ${a.approvals_required} approver${a.approvals_required === 1 ? '' : 's'} from ${a.approvers.join(', ')}`,
    `    requested ${when(a.created_at)}, expires ${when(a.expires_at)}${a.session ? `, session ${a.session}` : ''}`,
    // The statement's unqualified names mean what they meant under this path.
    `    search_path: ${a.search_path === undefined ? '(not known exactly)' : printable(a.search_path)}`,
    '    statement:',
    indent(printable(a.statement), '      '),
  ];
  if (a.params?.length) {
    lines.push(
      `    parameters: ${a.params.map((p, i) => `$${i + 1} = ${p === null ? 'NULL' : `'${printable(p).replace(/'/g, "''")}'`}`).join(', ')}`,
    );
  }
  for (const d of a.decisions) {
    lines.push(
      `    ${d.decision === 'approve' ? 'approved' : 'rejected'} by ${printable(d.name ?? d.subject)} at ${when(d.time)}${d.comment ? `: ${printable(d.comment)}` : ''}`,
    );
  }
  if (a.outcome_reason && a.status !== 'rejected')
    lines.push(`    ${a.status}: ${printable(a.outcome_reason)}`);
  if (a.can_decide) lines.push(c.dim(`    hoopctl approve ${a.id}    hoopctl reject ${a.id} --reason "..."`));
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

export function printAccessRequest(r: AccessRequestView): void {
  const lines = [
    `${c.bold(r.id)}  ${statusColour(r.active ? 'active' : r.status)}  ${r.requester.subject} on ${r.connection}: policy ${r.policy} for ${r.duration}`,
    `    reason: ${printable(r.reason)}`,
    `    requested ${when(r.created_at)}${r.approved_at ? `, approved ${when(r.approved_at)} by ${r.decided_by}` : ''}${r.expires_at ? `, ${r.active ? 'expires' : 'expired'} ${when(r.expires_at)}` : ''}`,
  ];
  if (r.status === 'rejected')
    lines.push(`    rejected by ${r.decided_by ?? '?'}: ${printable(r.decision_reason ?? '')}`);
  if (r.can_decide) lines.push(c.dim(`    hoopctl approve ${r.id}    hoopctl reject ${r.id} --reason "..."`));
  process.stdout.write(`${lines.join('\n')}\n\n`);
}

export function registerApprovalCommands(program: Command): void {
  program
    .command('approvals')
    .description(
      'List the requests you may decide: statements held for approval and time-boxed access requests',
    )
    .option('--all', 'every request you may see (any status), not only those waiting for you')
    .option('--json [fields]', 'print JSON: { "approvals": [...], "access_requests": [...] }')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      `
Each statement is shown in full, with its bound parameters, who asked, under which rule.
You cannot decide your own requests.

Examples:
  hoopctl approvals
  hoopctl approvals --all --json | jq '.approvals[] | select(.status == "pending")'`,
    )
    .action(async (opts: GatewayOption & { all?: boolean; json?: boolean | string }) => {
      const { target, token } = await session(opts);
      const list = await apiRequest<ApprovalListResponse>(
        target,
        'GET',
        `/v1/approvals${opts.all ? '?all=true' : ''}`,
        { token },
      );
      if (opts.json) {
        printJson(list, opts.json);
        return;
      }
      if (list.approvals.length === 0 && list.access_requests.length === 0) {
        process.stdout.write(opts.all ? 'No requests.\n' : 'Nothing waiting for your decision.\n');
        return;
      }
      for (const a of list.approvals) printApproval(a);
      for (const r of list.access_requests) printAccessRequest(r);
    });

  program
    .command('approve')
    .description('Approve a held statement (42) or a time-boxed access request (access-3)')
    .argument('<id>', 'request id')
    .option('--comment <text>', 'why (recorded)')
    .option('--json [fields]', 'print the outcome as JSON')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      '\nExamples:\n  hoopctl approve 42 --comment "checked the WHERE clause"\n  hoopctl approve access-3\n',
    )
    .action(async (id: string, opts: GatewayOption & { comment?: string; json?: boolean | string }) => {
      const ref = checkId(id);
      const { target, token } = await session(opts);
      const body: DecideRequest = opts.comment ? { comment: opts.comment } : {};
      const result = await apiRequest<DecideResponse>(
        target,
        'POST',
        `/v1/approvals/${encodeURIComponent(ref)}/approve`,
        { token, body },
      );
      if (opts.json) {
        printJson(result, opts.json);
        return;
      }
      if (ref.startsWith('access-')) {
        process.stdout.write(`approved ${ref}: access granted until ${when(result.expires_at)}\n`);
      } else if (result.status === 'approved') {
        process.stdout.write(
          `approved #${ref}${(result.approvals_required ?? 1) > 1 ? ` (${result.approvals} of ${result.approvals_required})` : ''}: the statement may run now\n`,
        );
      } else {
        process.stdout.write(
          `approved #${ref} (${result.approvals} of ${result.approvals_required}): it needs another approver\n`,
        );
      }
    });

  program
    .command('reject')
    .description('Reject a held statement or an access request, saying why')
    .argument('<id>', 'request id')
    .requiredOption('--reason <text>', 'why (the requester sees it; recorded)')
    .option('--json [fields]', 'print the outcome as JSON')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      '\nExample:\n  hoopctl reject 42 --reason "no WHERE clause: this deletes every order"\n',
    )
    .action(async (id: string, opts: GatewayOption & { reason: string; json?: boolean | string }) => {
      const ref = checkId(id);
      if (!opts.reason.trim()) throw new CliError('--reason must say why', ExitCode.usage);
      const { target, token } = await session(opts);
      const body: DecideRequest = { reason: opts.reason };
      const result = await apiRequest<DecideResponse>(
        target,
        'POST',
        `/v1/approvals/${encodeURIComponent(ref)}/reject`,
        { token, body },
      );
      if (opts.json) printJson(result, opts.json);
      else process.stdout.write(`rejected ${ref.startsWith('access-') ? ref : `#${ref}`}\n`);
    });

  program
    .command('request')
    .description(
      'Ask for time-boxed access: a requestable policy applies to you, once approved, until it expires',
    )
    .argument('<connection>', 'connection name')
    .requiredOption('--policy <name>', 'the requestable policy (see docs/approvals.md)')
    .requiredOption('--for <duration>', "how long, e.g. 30m, 1h (at most the policy's max_duration)")
    .requiredOption('--reason <text>', 'why (reviewers see it; recorded)')
    .option('--json [fields]', 'print the request as JSON')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      `
A reviewer approves it with \`hoopctl approve access-<n>\`; from then the policy's rules apply to
you on that connection until the time runs out, then they vanish by themselves.

Example:
  hoopctl request prod-db --policy break-glass --for 1h --reason "INC-123: fix stuck orders"`,
    )
    .action(
      async (
        connection: string,
        opts: GatewayOption & { policy: string; for: string; reason: string; json?: boolean | string },
      ) => {
        try {
          parseDuration(opts.for);
        } catch (err) {
          throw new CliError(`--for: ${(err as Error).message}`, ExitCode.usage);
        }
        const { target, token } = await session(opts);
        const body: AccessRequestBody = {
          connection,
          policy: opts.policy,
          duration: opts.for,
          reason: opts.reason,
        };
        const created = await apiRequest<AccessRequestView>(target, 'POST', '/v1/access-requests', {
          token,
          body,
        });
        if (opts.json) {
          printJson(created, opts.json);
          return;
        }
        process.stdout.write(`${created.id}\n`);
        process.stderr.write(
          `access request ${created.id} filed: policy ${created.policy} on ${created.connection} for ${created.duration}; a reviewer approves it with: hoopctl approve ${created.id}\n`,
        );
      },
    );

  program
    .command('requests')
    .description('Your time-boxed access requests and whether they are in force')
    .option('--all', "reviewers: everyone's requests")
    .option('--json [fields]', 'print JSON: { "access_requests": [...] }')
    .option('--gateway <url>', 'gateway URL')
    .action(async (opts: GatewayOption & { all?: boolean; json?: boolean | string }) => {
      const { target, token } = await session(opts);
      const list = await apiRequest<AccessRequestListResponse>(
        target,
        'GET',
        `/v1/access-requests${opts.all ? '?all=true' : ''}`,
        { token },
      );
      if (opts.json) {
        printJson(list, opts.json);
        return;
      }
      if (list.access_requests.length === 0) {
        process.stdout.write('No access requests.\n');
        return;
      }
      for (const r of list.access_requests) printAccessRequest(r);
    });
}
