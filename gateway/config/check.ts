/**
 * Everything `--check` validates, and what start-up does before opening anything: the schema, then the
 * files and secrets the configuration names, all in one list, so one run shows every problem.
 */
import { ConfigError, loadConfig } from '../../src/shared/config/load.js';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import { referencedFileProblems } from './files.js';
import { namedSecretProblems, resolveConnectionPasswords } from './secrets.js';

export function checkConfigFile(file: string): { config: GatewayConfig; passwords: Map<string, string> } {
  // Schema errors come alone: the files and secrets are only known once the keys that name them parse.
  const { config, where } = loadConfig(file);
  const { passwords, problems: passwordProblems } = resolveConnectionPasswords(config, where);
  const problems = [
    ...referencedFileProblems(config, where),
    ...passwordProblems,
    ...namedSecretProblems(config, where),
  ];
  if (problems.length > 0) throw new ConfigError(file, inFileOrder(problems));
  return { config, passwords };
}

/** Problems by the line they name, as the file reads (those without a line last, in the order found). */
function inFileOrder(problems: string[]): string[] {
  const line = (p: string) => Number(/^\S+ \(line (\d+)\)/.exec(p)?.[1] ?? Number.MAX_SAFE_INTEGER);
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => line(a.p) - line(b.p) || a.i - b.i)
    .map(({ p }) => p);
}
