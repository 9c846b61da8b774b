/**
 * `hoopctl exec <conn>`: run SQL through the gateway with no local port — for CI jobs, bots and
 * agents. Statements run one by one (split by the real parser), results stream to stdout as
 * table, json (one object per line) or csv, and the exit code tells the outcome.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { ApprovalView } from '../../shared/api.js';
import { formatDuration, parseDuration } from '../../shared/duration.js';
import { type ApiErrorBody, CliError, ExitCode } from '../../shared/errors.js';
import { splitSqlScript } from '../../shared/sql-split.js';
import { errorForStatus, type GatewayTarget, rawRequest } from '../api.js';
import { onInterrupt } from '../interrupt.js';
import { ce, colourWanted, info } from '../output.js';
import { type PgError, PgServerError, PgSession } from '../pg-session.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';
import { openTunnel } from '../tunnel.js';
import { approvalDeadline, approvalIdOf, createApprovalWatcher } from './approval-wait.js';
import { createResultWriter, type OutputFormat } from './exec-output.js';

/** How long past --approval-timeout the CLI waits for the gateway's verdict before giving up itself. */
const APPROVAL_GRACE_MS = 5_000;

interface ExecOptions {
  command?: string[];
  file?: string;
  format: OutputFormat;
  json?: boolean;
  approvalTimeout: string;
  wait: boolean;
  approval?: string;
  continueOnError?: boolean;
  gateway?: string;
}

export function registerExecCommand(program: Command): void {
  program
    .command('exec')
    .description('Run SQL through the gateway (no local port): for scripts, CI jobs and agents')
    .argument('<connection>', 'connection name (see: hoopctl connections)')
    .option('-c, --command <sql>', 'SQL to run (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .option('-f, --file <path>', 'file of SQL to run ("-" for stdin)')
    .option(
      '--format <format>',
      'output: table, json (one typed object per row, per line) or csv (a header per result set)',
      'table',
    )
    .option('--json', 'the same as --format json')
    .option('--approval-timeout <duration>', 'how long to wait for an approval', '30m')
    .option('--no-wait', 'do not wait for approval: print the request id and exit 5')
    .option(
      '--approval <id>',
      'run the statement this approval request approved (without SQL: fetched as it was approved)',
    )
    .option('--continue-on-error', 'run the remaining statements after one fails')
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .addHelpText(
      'after',
      `
With neither -c nor -f, SQL is read from stdin. With --approval ID and no SQL (nothing on stdin
either), the CLI fetches the statement that ID approved and runs exactly it; with SQL, the gateway
checks it is that statement. Statements run one at a time, each in its own
transaction unless the script says BEGIN/COMMIT. The session id goes to stderr for the audit trail.
json values are typed from the column types (booleans, numbers, parsed json; int8 and numeric that
JSON cannot hold exactly stay strings); csv writes a header per result set and an empty line between
result sets (docs/cli.md has the details).

A statement held for approval shows a spinner on a terminal, plain progress lines otherwise; the
wait ends on --approval-timeout (exit 5), and on Ctrl-C or SIGTERM (exit 130/143), which also
withdraws the request.

Exit codes: 0 ok, 3 not authenticated, 4 denied by policy, 5 approval rejected or timed out
(or --no-wait and approval needed), 6 database error, 1 other errors, 2 usage.

Examples:
  hoopctl exec prod-db -c "select count(*) from customers"
  hoopctl exec prod-db -f migrate.sql
  cat report.sql | hoopctl exec prod-db --format csv > report.csv
  hoopctl exec prod-db --json -c "select id, email from customers" | jq .email
  hoopctl exec prod-db -c "delete from orders where id = 7" --no-wait     # prints the approval id
  hoopctl exec prod-db --approval 42      # once approved: runs the statement request 42 approved`,
    )
    .action(async (connection: string, opts: ExecOptions) => {
      process.exitCode = await runExec(connection, opts);
    });
}

async function readSql(opts: ExecOptions): Promise<string> {
  if (opts.command?.length && opts.file) throw new CliError('give -c or -f, not both', ExitCode.usage);
  if (opts.command?.length) return opts.command.join(';\n');
  if (opts.file && opts.file !== '-') {
    try {
      return readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new CliError(
        `cannot read ${opts.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        ExitCode.usage,
      );
    }
  }
  if (process.stdin.isTTY && opts.file !== '-') {
    // --approval alone: the approved statement is fetched (approvedStatement).
    if (opts.approval) return '';
    throw new CliError('no SQL: give -c SQL, -f FILE, or pipe it on stdin', ExitCode.usage);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `exec --approval ID` with no SQL: the statement that request approved, as the gateway has it. */
async function approvedStatement(target: GatewayTarget, token: string, id: string): Promise<string> {
  const path = `/v1/approvals/${encodeURIComponent(id.replace(/^#/, ''))}`;
  const answer = await rawRequest(target, 'GET', path, { token });
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    body = undefined;
  }
  if (answer.status === 404) {
    throw new CliError(
      `there is no approval request #${id} of yours (hoopctl approvals --all)`,
      ExitCode.approval,
    );
  }
  if (answer.status !== 200) {
    const message = (body as ApiErrorBody | undefined)?.error?.message ?? `HTTP ${answer.status}`;
    throw errorForStatus(target, answer.status, message);
  }
  return statementOfApproval(body as ApprovalView);
}

/** The text to send for an approval; one with bound parameters cannot be sent by exec's simple query. */
export function statementOfApproval(approval: ApprovalView): string {
  if (approval.kind !== 'statement') {
    throw new CliError(`${approval.id} is an access request, not a statement approval`, ExitCode.usage);
  }
  if (approval.params?.length) {
    const count = `${approval.params.length} bound parameter${approval.params.length === 1 ? '' : 's'}`;
    throw new CliError(
      `approval #${approval.id} approved a statement with ${count}, which exec cannot send: run it from the client that filed it (an agent: wait_for_approval)`,
      ExitCode.usage,
    );
  }
  return approval.statement;
}

/** Map a statement's failure to the exit code SPEC.md promises. */
export function exitCodeForError(error: PgError): ExitCode {
  switch (error.routine) {
    case 'hoop_policy_denied':
    case 'hoop_approval_required':
      return ExitCode.denied;
    case 'hoop_approval_rejected':
    case 'hoop_approval_expired':
    case 'hoop_approval_withdrawn':
    case 'hoop_approval_pending': // --no-wait: the request was filed, the statement did not run
    case 'hoop_approval_invalid': // --approval ID that does not approve this statement
      return ExitCode.approval;
    case 'hoop_revoked':
      return ExitCode.notAuthenticated;
    default:
      // Class 28 (invalid authorization): the gateway ended the session because the identity was revoked.
      return error.code.startsWith('28') ? ExitCode.notAuthenticated : ExitCode.database;
  }
}

async function runExec(connection: string, opts: ExecOptions): Promise<number> {
  if (opts.json) opts.format = 'json';
  if (!['table', 'json', 'csv'].includes(opts.format)) {
    throw new CliError(`--format must be table, json or csv (got "${opts.format}")`, ExitCode.usage);
  }
  let approvalTimeoutMs: number;
  try {
    approvalTimeoutMs = parseDuration(opts.approvalTimeout);
  } catch (err) {
    throw new CliError(`--approval-timeout: ${(err as Error).message}`, ExitCode.usage);
  }
  const sql = await readSql(opts);
  let statements = await splitSqlScript(sql);
  if (statements.length === 0 && !opts.approval)
    throw new CliError('no SQL statements to run', ExitCode.usage);

  const target = resolveGateway(opts.gateway);
  const token = await getAccessToken(target);
  // --approval ID and no SQL (an empty stdin counts as none): run exactly the text it approved, unsplit.
  if (statements.length === 0) statements = [await approvedStatement(target, token, opts.approval!)];
  // The gateway holds a statement needing approval as long as we wait (or files it and refuses at once: --no-wait).
  const approvalWait = opts.wait ? String(approvalTimeoutMs) : 'none';
  const stream = await openTunnel({
    target,
    connection,
    token,
    client: 'exec',
    approval: opts.approval,
    approvalWait,
  });
  // Ctrl-C / SIGTERM: close the tunnel, so the gateway withdraws a statement held for approval.
  const forget = onInterrupt(() => stream.destroy());
  const session = new PgSession(stream);
  const watcher = createApprovalWatcher();
  // The gateway ends an approval wait at --approval-timeout; should it not answer, the CLI ends it itself.
  const deadline = approvalDeadline(approvalTimeoutMs + APPROVAL_GRACE_MS, () => stream.destroy());
  const notice = (n: PgError) => {
    deadline.notice(n);
    if (!watcher.notice(n)) info(`${ce.dim(`${n.severity}:`)} ${n.message}`);
  };
  try {
    await session.start(connection, notice);
  } catch (err) {
    if (err instanceof PgServerError) throw new CliError(err.error.message, exitCodeForError(err.error));
    throw err;
  }
  info(ce.dim(`hoop session ${stream.sessionId ?? 'unknown'} on ${connection}`));

  const writer = createResultWriter(opts.format, process.stdout, colourWanted(process.stdout));
  let exitCode: ExitCode = ExitCode.ok;
  try {
    exitCode = await runStatements(statements, { session, writer, watcher, notice, opts });
  } catch (err) {
    const id = deadline.expired();
    if (id === undefined) throw err;
    watcher.finish();
    throw new CliError(
      `approval #${id} was not decided within ${formatDuration(approvalTimeoutMs)}; the request is withdrawn`,
      ExitCode.approval,
    );
  } finally {
    deadline.clear();
    forget();
  }
  await session.end();
  return exitCode;
}

async function runStatements(
  statements: string[],
  ctx: {
    session: PgSession;
    writer: ReturnType<typeof createResultWriter>;
    watcher: ReturnType<typeof createApprovalWatcher>;
    notice: (n: PgError) => void;
    opts: ExecOptions;
  },
): Promise<ExitCode> {
  const { session, writer, watcher, notice, opts } = ctx;
  let exitCode: ExitCode = ExitCode.ok;
  // One 'drain' listener at a time, however many rows of a chunk found stdout full.
  let draining = false;
  for (const statement of statements) {
    const failure = await session.query(statement, {
      onColumns: (columns) => writer.columns(columns),
      onRow: (values) => {
        const ok = writer.row(values);
        if (!ok && !draining) {
          draining = true;
          process.stdout.once('drain', () => {
            draining = false;
            session.resume();
          });
        }
        return ok;
      },
      onComplete: (tag) => writer.complete(tag),
      onNotice: notice,
    });
    writer.end();
    watcher.finish(failure);
    if (failure) {
      const where = failure.detail ? `\n${ce.dim('DETAIL:')} ${failure.detail}` : '';
      const hint = failure.hint ? `\n${ce.dim('HINT:')} ${failure.hint}` : '';
      process.stderr.write(
        `${ce.red('ERROR:')} ${failure.message} (SQLSTATE ${failure.code})${where}${hint}\n`,
      );
      exitCode = exitCode === ExitCode.ok ? exitCodeForError(failure) : exitCode;
      // --no-wait: the request id on stdout, for the script to pass to `exec --approval` later.
      if (failure.routine === 'hoop_approval_pending')
        process.stdout.write(`${approvalIdOf(failure.message) ?? ''}\n`);
      // FATAL: the gateway ended the session (revoked, shutting down): nothing more can run.
      if (!opts.continueOnError || failure.severity === 'FATAL' || failure.severity === 'PANIC') break;
    }
  }
  return exitCode;
}
