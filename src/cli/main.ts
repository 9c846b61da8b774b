/** hoopctl: the command line. Each command group registers itself from its own file in commands/. */
import { Command, CommanderError } from 'commander';
import { CliError, ExitCode } from '../shared/errors.js';
import { registerApprovalCommands } from './commands/approvals.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerConnectCommand } from './commands/connect.js';
import { registerConnectionsCommand } from './commands/connections.js';
import { registerExecCommand } from './commands/exec.js';
import { registerIdentityCommands } from './commands/identities.js';
import { registerLoginCommands } from './commands/login.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerReportCommands } from './commands/report.js';
import { registerSessionCommands } from './commands/sessions.js';
import { ce } from './output.js';

export function buildProgram(): Command {
  const program = new Command('hoopctl')
    .description(
      'Identity-aware access to PostgreSQL through a hoop gateway: every statement checked, masked, recorded.',
    )
    .version(process.env.npm_package_version ?? '0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(ce.red(text)) })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  hoopctl login --gateway https://gateway.example.com:8443
  hoopctl connect prod-db
  hoopctl exec prod-db -c "select count(*) from customers"
  hoopctl approvals

Exit codes: 0 ok, 1 error, 2 usage, 3 not authenticated, 4 denied by policy,
            5 approval rejected or timed out, 6 database error.`,
  );
  for (const register of [
    registerLoginCommands,
    registerConnectionsCommand,
    registerConnectCommand,
    registerExecCommand,
    registerApprovalCommands,
    registerSessionCommands,
    registerAuditCommands,
    registerIdentityCommands,
    registerPolicyCommands,
    registerReportCommands,
    registerMcpCommand,
  ]) {
    register(program);
  }
  for (const command of program.commands) command.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `hoopctl exec ... | head`: the reader went away; stop quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end with code 0; parse errors were already printed by commander.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof CliError) {
    process.stderr.write(`${ce.red('error:')} ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`${ce.red('error:')} ${(err as Error)?.message ?? String(err)}\n`);
  if (process.env.HOOPCTL_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return ExitCode.error;
}
