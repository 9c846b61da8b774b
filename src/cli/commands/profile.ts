/**
 * hoopctl profile list | use | remove: several gateways and identities at once. A profile is created by
 * logging in with it (`hoopctl --profile NAME login --gateway URL`); each has its own gateway, login and
 * token store. settings.ts says where they live and how one is chosen.
 */
import type { Command } from 'commander';
import { CliError, ExitCode } from '../../shared/errors.js';
import { c, info, JSON_OPTION_FLAGS, jsonOptionHelp, printJson, printTable } from '../output.js';
import {
  checkProfileName,
  currentProfile,
  DEFAULT_PROFILE,
  readSettings,
  writeSettings,
} from '../settings.js';

export function registerProfileCommands(program: Command): void {
  const profile = program
    .command('profile')
    .description('Named profiles: one gateway, identity and token store each')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl --profile staging login --gateway https://staging.example.com:8443
  hoopctl profile list
  hoopctl profile use staging
  HOOPCTL_PROFILE=prod hoopctl approvals
  hoopctl profile remove staging`,
    );

  profile
    .command('list')
    .description('List the profiles, their gateways and who logged in; * marks the one in use')
    .option(JSON_OPTION_FLAGS, jsonOptionHelp('[{ name, current, gateway, subject, token_store }]'))
    .action(async (opts: { json?: boolean | string }) => {
      const settings = readSettings();
      const inUse = currentProfile();
      const names = new Set([...Object.keys(settings.profiles), inUse]);
      const rows = [...names].sort().map((name) => {
        const p = settings.profiles[name] ?? {};
        return {
          name,
          current: name === inUse,
          gateway: p.gateway ?? null,
          subject: p.subject ?? null,
          token_store: p.tokenStore ?? null,
        };
      });
      if (opts.json) {
        printJson(rows, opts.json);
        return;
      }
      printTable(
        ['', 'PROFILE', 'GATEWAY', 'LAST LOGIN', 'TOKEN STORE'],
        rows.map((r) => [
          r.current ? c.green('*') : '',
          r.name,
          r.gateway ?? '(none)',
          r.subject ?? '',
          r.token_store ?? 'default',
        ]),
      );
    });

  profile
    .command('use')
    .description(
      'Make a profile the one commands use when neither --profile nor HOOPCTL_PROFILE says otherwise',
    )
    .argument('<profile>', 'profile name')
    .action(async (name: string) => {
      checkProfileName(name);
      const settings = readSettings();
      if (!settings.profiles[name] && name !== DEFAULT_PROFILE) {
        const known = Object.keys(settings.profiles).join(', ') || 'none';
        throw new CliError(
          `no profile ${name} (profiles: ${known}); create it with: hoopctl --profile ${name} login --gateway URL`,
          ExitCode.usage,
        );
      }
      settings.current = name;
      writeSettings(settings);
      info(
        `now using profile ${name}${settings.profiles[name]?.gateway ? ` (${settings.profiles[name]!.gateway})` : ''}`,
      );
      if (process.env.HOOPCTL_PROFILE && process.env.HOOPCTL_PROFILE !== name) {
        info(c.dim(`note: HOOPCTL_PROFILE=${process.env.HOOPCTL_PROFILE} is set and wins while it is`));
      }
    });

  profile
    .command('remove')
    .description('Forget a profile: its settings and every token it kept')
    .argument('<profile>', 'profile name')
    .action(async (name: string) => {
      checkProfileName(name);
      const settings = readSettings();
      const removed = settings.profiles[name];
      const { clearProfileTokens } = await import('../tokens.js');
      clearProfileTokens(name, removed?.gateway ? [removed.gateway] : []);
      if (!removed) {
        const known = Object.keys(settings.profiles).join(', ') || 'none';
        throw new CliError(`no profile ${name} to remove (profiles: ${known})`, ExitCode.usage);
      }
      delete settings.profiles[name];
      if (settings.current === name) delete settings.current;
      writeSettings(settings);
      info(`removed profile ${name}${settings.current ? '' : `; now using ${DEFAULT_PROFILE}`}`);
    });
}
