/**
 * Shell completion: `hoopctl completion bash|zsh|fish` prints a script; the script asks the hidden
 * `hoopctl __complete [--shell S] -- WORDS...` for the candidates of the last (partial) word.
 *
 * Candidates come from the commander tree — commands, subcommands, options and their `.choices()` — so
 * a command another stream adds completes with no extra work. Values come from the gateway when logged
 * in: an argument or option named <connection> (or --connection) completes connection names, <id>
 * approval and access-request ids, <profile>/--profile the profiles. `completeWith(option, values)`
 * adds a fixed list or a function for anything else. Gateway look-ups have a short timeout, are cached
 * for a minute per profile and gateway, and fail silently: completion never prints an error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argument, Command, Option } from 'commander';
import type { ApprovalListResponse, ConnectionView } from '../shared/api.js';
import { CliError, ExitCode } from '../shared/errors.js';
import { homeDir, readSettings, useProfile, writePrivateFile } from './settings.js';

type Values = readonly string[] | (() => Promise<string[]>);
const extra = new WeakMap<Option | Argument, Values>();

/** Complete this option's (or argument's) value from a list or a function. */
export function completeWith(target: Option | Argument, values: Values): void {
  extra.set(target, values);
}

/** Named value sources, by argument name or option attribute. */
const BY_NAME: Record<string, () => Promise<string[]>> = {
  connection: () =>
    fromGateway('connections', async (target, token, api) =>
      (await api<ConnectionView[]>(target, 'GET', '/v1/connections', { token, timeoutMs: TIMEOUT_MS })).map(
        (c) => c.name,
      ),
    ),
  id: () =>
    fromGateway('approvals', async (target, token, api) => {
      const list = await api<ApprovalListResponse>(target, 'GET', '/v1/approvals', {
        token,
        timeoutMs: TIMEOUT_MS,
      });
      return [...list.approvals.map((a) => a.id), ...list.access_requests.map((r) => r.id)];
    }),
  profile: async () => Object.keys(readSettings().profiles),
  shell: async () => ['bash', 'zsh', 'fish'],
};

const TIMEOUT_MS = 1500;
const CACHE_MS = 60_000;

export function registerCompletionCommands(program: Command): void {
  program
    .command('completion')
    .description('Print a shell completion script (bash, zsh or fish)')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      `
Completes commands, flags, connection names and approval ids (from the gateway, when logged in).

Examples:
  source <(hoopctl completion bash)                               # bash, this shell
  hoopctl completion bash > /etc/bash_completion.d/hoopctl        # bash, for everyone
  hoopctl completion zsh > "\${fpath[1]}/_hoopctl"                 # zsh
  hoopctl completion fish > ~/.config/fish/completions/hoopctl.fish`,
    )
    .action((shell: string) => {
      const script = SCRIPTS[shell];
      if (!script) throw new CliError(`no completion for "${shell}": bash, zsh or fish`, ExitCode.usage);
      process.stdout.write(script);
    });

  program
    .command('__complete', { hidden: true })
    .description('candidates for the last word (used by the completion scripts)')
    .option('--shell <shell>', 'format for this shell', 'bash')
    .argument('[words...]')
    .allowUnknownOption()
    .action(async (words: string[], opts: { shell: string }) => {
      const candidates = await complete(program, words).catch(() => []);
      const lines = candidates.map(([name, description]) =>
        opts.shell === 'fish' && description
          ? `${name}\t${description}`
          : opts.shell === 'zsh' && description
            ? `${name.replace(/:/g, '\\:')}:${description}`
            : name,
      );
      if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** [candidate, description] pairs for the last of `words` (the word being completed, maybe ""). */
export async function complete(root: Command, words: string[]): Promise<[string, string?][]> {
  const current = words.at(-1) ?? '';
  const profileAt = words.indexOf('--profile');
  if (profileAt >= 0 && profileAt < words.length - 2) useProfile(words[profileAt + 1]);
  let command = root;
  let positional = 0;
  let pendingOption: Option | undefined;
  for (const word of words.slice(0, -1)) {
    if (pendingOption) {
      pendingOption = undefined;
      continue;
    }
    if (word.startsWith('-')) {
      const option = findOption(command, word);
      // A required value is the next word; an optional one ("--json [fields]") is never guessed at.
      if (option?.required && !word.includes('=')) pendingOption = option;
      continue;
    }
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub && positional === 0) {
      command = sub;
      continue;
    }
    positional++;
  }
  const matching = (list: [string, string?][]) => list.filter(([name]) => name.startsWith(current));
  if (pendingOption) return matching((await valuesFor(pendingOption)).map((v) => [v]));
  if (current.startsWith('-')) return matching(optionsOf(command));
  const subcommands: [string, string?][] = command.commands
    .filter((c) => !c.name().startsWith('__'))
    .map((c) => [c.name(), c.description()]);
  if (subcommands.length && positional === 0) return matching(subcommands);
  const argument = command.registeredArguments[Math.min(positional, command.registeredArguments.length - 1)];
  if (!argument) return [];
  return matching((await valuesFor(argument)).map((v) => [v]));
}

function findOption(command: Command, word: string): Option | undefined {
  const flag = word.split('=')[0];
  for (let c: Command | null = command; c; c = c.parent) {
    const found = c.options.find((o) => o.long === flag || o.short === flag);
    if (found) return found;
  }
  return undefined;
}

function optionsOf(command: Command): [string, string?][] {
  const out: [string, string?][] = [];
  for (let c: Command | null = command; c; c = c.parent) {
    for (const o of c.options) if (o.long && !o.hidden) out.push([o.long, o.description]);
  }
  out.push(['--help', 'show help']);
  return out;
}

async function valuesFor(target: Option | Argument): Promise<string[]> {
  const own = extra.get(target);
  if (own) return typeof own === 'function' ? own() : [...own];
  if (target.argChoices?.length) return [...target.argChoices];
  const name = 'attributeName' in target ? target.attributeName() : target.name();
  return (await BY_NAME[name]?.()) ?? [];
}

type Api = typeof import('./api.js').apiRequest;

/** Names from the gateway for this profile, cached briefly; [] on any failure (never an error). */
async function fromGateway(
  what: string,
  load: (target: import('./api.js').GatewayTarget, token: string, api: Api) => Promise<string[]>,
): Promise<string[]> {
  const { resolveGateway } = await import('./settings.js');
  const target = resolveGateway();
  const key = `${target.profile} ${target.url} ${what}`;
  const cacheFile = join(homeDir(), 'completion-cache.json');
  let cache: Record<string, { at: number; values: string[] }> = {};
  try {
    if (existsSync(cacheFile)) cache = JSON.parse(readFileSync(cacheFile, 'utf8'));
  } catch {
    cache = {};
  }
  const hit = cache[key];
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.values;
  const [{ getAccessToken }, { apiRequest }] = await Promise.all([import('./tokens.js'), import('./api.js')]);
  const token = await Promise.race([
    getAccessToken(target),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), TIMEOUT_MS).unref()),
  ]);
  const values = await load(target, token, apiRequest);
  cache[key] = { at: Date.now(), values };
  try {
    writePrivateFile(cacheFile, JSON.stringify(cache));
  } catch {
    // A cache we cannot write only makes the next completion slower.
  }
  return values;
}

const BASH = `# hoopctl completion for bash: source <(hoopctl completion bash)
_hoopctl_complete() {
  local IFS=$'\\n'
  COMPREPLY=( $(hoopctl __complete --shell bash -- "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) )
}
complete -o default -F _hoopctl_complete hoopctl
`;

const ZSH = `#compdef hoopctl
# hoopctl completion for zsh: hoopctl completion zsh > "\${fpath[1]}/_hoopctl"
_hoopctl() {
  local -a candidates
  candidates=("\${(@f)$(hoopctl __complete --shell zsh -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#candidates[@]} )) && [[ -n "\${candidates[1]}" ]]; then
    _describe 'hoopctl' candidates
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == _hoopctl ]]; then _hoopctl "$@"; else compdef _hoopctl hoopctl; fi
`;

const FISH = `# hoopctl completion for fish: hoopctl completion fish > ~/.config/fish/completions/hoopctl.fish
function __hoopctl_complete
    set -l tokens (commandline -opc) (commandline -ct)
    hoopctl __complete --shell fish -- $tokens[2..-1] 2>/dev/null
end
complete -c hoopctl -f -a '(__hoopctl_complete)'
`;

const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH, fish: FISH };
