/**
 * hoopctl: the command line. Each command group registers itself from its own file in commands/.
 *
 * Adding a command (other streams do this): write src/cli/commands/NAME.ts exporting
 * `registerNameCommands(program: Command)`, then add ONE line to COMMAND_MODULES below naming the
 * top-level commands it registers. Keep the module's top-level imports light (commander types, output.js,
 * settings.js): load heavy dependencies inside the action with `await import(...)`, so other commands
 * never pay for them. Shell completion needs nothing more: commands, subcommands, options and their
 * `.choices()` are read from the commander tree, and an argument or option named `<connection>`, `<id>`
 * (approvals) or `<profile>` completes from the gateway or the settings (see completion.ts, which also
 * has `completeWith()` for anything else).
 */
import { Command, CommanderError, Option } from 'commander';
import { CliError, ExitCode } from '../shared/errors.js';
import { installSignalHandlers } from './interrupt.js';
import { ce } from './output.js';
import {
  GLOBAL_SETTINGS,
  type GlobalFlags,
  type GlobalSetting,
  useGlobalFlags,
  useProfile,
} from './settings.js';
import { cliVersion, printVersion } from './version.js';

type Register = (program: Command) => void;

/** Every command module, one line each: the top-level commands it registers, and how to load it. */
export const COMMAND_MODULES: { names: string[]; load: () => Promise<Register> }[] = [
  {
    names: ['login', 'logout', 'whoami'],
    load: async () => (await import('./commands/login.js')).registerLoginCommands,
  },
  {
    names: ['status', 'token'],
    load: async () => (await import('./commands/status.js')).registerStatusCommands,
  },
  { names: ['profile'], load: async () => (await import('./commands/profile.js')).registerProfileCommands },
  {
    names: ['connections'],
    load: async () => (await import('./commands/connections.js')).registerConnectionsCommand,
  },
  {
    names: ['connect', 'psql'],
    load: async () => (await import('./commands/connect.js')).registerConnectCommand,
  },
  { names: ['exec'], load: async () => (await import('./commands/exec.js')).registerExecCommand },
  {
    names: ['approvals', 'approve', 'reject', 'request', 'requests'],
    load: async () => (await import('./commands/approvals.js')).registerApprovalCommands,
  },
  { names: ['sessions'], load: async () => (await import('./commands/sessions.js')).registerSessionCommands },
  { names: ['audit'], load: async () => (await import('./commands/audit.js')).registerAuditCommands },
  {
    names: ['identities'],
    load: async () => (await import('./commands/identities.js')).registerIdentityCommands,
  },
  { names: ['policy'], load: async () => (await import('./commands/policy.js')).registerPolicyCommands },
  { names: ['report'], load: async () => (await import('./commands/report.js')).registerReportCommands },
  { names: ['mcp'], load: async () => (await import('./commands/mcp.js')).registerMcpCommand },
  {
    names: ['completion', '__complete'],
    load: async () => (await import('./completion.js')).registerCompletionCommands,
  },
];

/** Options of the program itself, which may come before or after the command. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set([
  '--profile',
  '--id-token-file',
  '--gateway',
  ...Object.values(GLOBAL_SETTINGS).map((s) => s.flag),
]);

/** The global options besides --profile; each but --id-token-file overrides an environment variable. */
function globalOptions(): Option[] {
  const visible = 'visible to other local users (ps): prefer';
  return [
    // Each command lists --gateway itself; the root takes it wherever it is, so it also works first.
    new Option('--gateway <url>', 'gateway URL (HOOPCTL_GATEWAY)').hideHelp(),
    new Option('--home <dir>', 'directory for settings and the token file (HOOPCTL_HOME)'),
    new Option('--ca-file <pem>', 'trust this private CA for the gateway (HOOPCTL_CA_FILE)'),
    new Option(
      '--token-store <kind>',
      'keep tokens in the OS keychain or a 0600 file (HOOPCTL_TOKEN_STORE)',
    ).choices(['keychain', 'file']),
    new Option('--client-id <id>', 'client credentials: the client id (HOOPCTL_CLIENT_ID)'),
    new Option(
      '--client-secret <secret>',
      `client credentials: the secret; ${visible} HOOPCTL_CLIENT_SECRET`,
    ),
    new Option('--id-token <token>', `act as this workload ID token; ${visible} HOOPCTL_ID_TOKEN`),
    new Option(
      '--id-token-file <path>',
      'act as the workload whose ID token is in this file (re-read each time)',
    ),
  ];
}

/** --profile and the other global options, applied before any command runs. */
function applyGlobalOptions(opts: Record<string, string | undefined>): void {
  useProfile(opts.profile);
  const flags: GlobalFlags = { idTokenFile: opts.idTokenFile, gateway: opts.gateway };
  for (const key of Object.keys(GLOBAL_SETTINGS) as GlobalSetting[]) flags[key] = opts[key];
  useGlobalFlags(flags);
}

export const ROOT_HELP = `
Examples:
  hoopctl login --gateway https://gateway.example.com:8443
  hoopctl connect prod-db
  hoopctl psql prod-db -- -c "select 1"
  hoopctl exec prod-db -c "select count(*) from customers"
  hoopctl approvals
  hoopctl --profile staging status

Environment: HOOPCTL_GATEWAY, HOOPCTL_PROFILE, HOOPCTL_HOME, HOOPCTL_TOKEN_STORE=keychain|file,
HOOPCTL_CA_FILE, HOOPCTL_CLIENT_ID + HOOPCTL_CLIENT_SECRET, HOOPCTL_ID_TOKEN, NO_COLOR, FORCE_COLOR.
Each HOOPCTL_ setting is also a global option (--gateway on each command); the option wins.

Exit codes: 0 ok, 1 error, 2 usage, 3 not authenticated, 4 denied by policy,
            5 approval rejected or timed out, 6 database error; 130/143 interrupted (Ctrl-C/SIGTERM).`;

/** The program with the modules that `argv` needs (all of them for help, completion and typos). */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('hoopctl')
    .description(
      'Identity-aware access to PostgreSQL through a hoop gateway: every statement checked, masked, recorded.',
    )
    .version(cliVersion(), '-V, --version', 'print the CLI version (and the gateway version when logged in)')
    .option('--profile <name>', 'act as this profile (default: HOOPCTL_PROFILE or `hoopctl profile use`)')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(ce.red(text)) })
    .exitOverride();
  for (const option of globalOptions()) program.addOption(option);
  program.addHelpText('after', ROOT_HELP);
  // Global options may follow the command: the root takes them wherever they are.
  program.hook('preAction', () => applyGlobalOptions(program.opts()));
  const word = commandWord(argv.slice(2));
  // Completion walks the whole tree: it needs every module, as help and typos do.
  const wanted =
    word === '__complete' ? [] : COMMAND_MODULES.filter((m) => word !== undefined && m.names.includes(word));
  for (const module of wanted.length ? wanted : COMMAND_MODULES) (await module.load())(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** The first word that is not an option (or a global option's value): the command to load. */
export function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return undefined;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<void> {
  installSignalHandlers();
  // `hoopctl exec ... | head`: the reader went away; stop quietly, as Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  const args = argv.slice(2);
  try {
    if (isVersionRequest(args)) {
      applyGlobalOptions(globalOptionsOf(args));
      await printVersion(args.includes('--json'));
      return;
    }
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function isVersionRequest(args: string[]): boolean {
  const isGlobal = (a: string | undefined) => a !== undefined && GLOBAL_OPTIONS_WITH_VALUE.has(a);
  const rest = args.filter((a, i) => a !== '--json' && !isGlobal(a) && !isGlobal(args[i - 1]));
  return rest.length === 1 && (rest[0] === '--version' || rest[0] === '-V');
}

/** `--version` skips commander: read the global options ourselves (--ca-file X → { caFile: X }). */
function globalOptionsOf(args: string[]): Record<string, string | undefined> {
  const opts: Record<string, string | undefined> = {};
  for (let i = 0; i < args.length - 1; i++) {
    const flag = args[i]!;
    if (!GLOBAL_OPTIONS_WITH_VALUE.has(flag)) continue;
    opts[flag.slice(2).replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase())] = args[++i];
  }
  return opts;
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
