/** `hoopctl connections`: what I may reach, and under which rules. */
import type { Command } from 'commander';
import type { ConnectionView, PolicyView } from '../../shared/api.js';
import { apiRequest } from '../api.js';
import { c, printJson } from '../output.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';

export function registerConnectionsCommand(program: Command): void {
  program
    .command('connections')
    .description('List the connections you may reach and the rules that apply to you on each')
    .option(
      '--json [fields]',
      'print JSON: [{ name, description, database, policies: [{ name, rules, masking }], requestable: [{ name, max_duration, rules, masking }] }]',
    )
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .addHelpText(
      'after',
      `
Rules are listed in the order they are evaluated: the first that matches a statement decides;
a statement no rule matches is denied. Requestable policies you could be granted for a while are
listed under each connection with the command that asks for one (hoopctl request).

Examples:
  hoopctl connections
  hoopctl connections --json | jq '.[].name'
  hoopctl connections --json name,requestable`,
    )
    .action(async (opts: { json?: boolean | string; gateway?: string }) => {
      const target = resolveGateway(opts.gateway);
      const views = await apiRequest<ConnectionView[]>(target, 'GET', '/v1/connections', {
        token: await getAccessToken(target),
      });
      if (opts.json) {
        printJson(views, opts.json);
        return;
      }
      if (views.length === 0) {
        process.stdout.write('No connections: no policy on this gateway gives you access to any.\n');
        return;
      }
      for (const view of views) {
        process.stdout.write(
          `${c.bold(view.name)}  database ${view.database}${view.description ? `  — ${view.description}` : ''}\n`,
        );
        for (const policy of view.policies) printPolicy(policy);
        process.stdout.write(
          `    ${c.red('deny'.padEnd(7))} ${'everything else'.padEnd(34)} ${c.dim('default-deny')}\n`,
        );
        for (const policy of view.requestable ?? []) {
          process.stdout.write(
            `  ${c.dim('requestable')} ${c.cyan(policy.name)} ${c.dim(`for up to ${policy.max_duration}: hoopctl request ${view.name} --policy ${policy.name} --for 1h --reason "..."`)}\n`,
          );
        }
        process.stdout.write('\n');
      }
    });
}

function printPolicy(policy: PolicyView): void {
  process.stdout.write(`  policy ${c.cyan(policy.name)}\n`);
  for (const rule of policy.rules) {
    const colour = rule.action === 'allow' ? c.green : rule.action === 'deny' ? c.red : c.yellow;
    const narrow = [
      rule.relations?.length ? `relations ${rule.relations.join(',')}` : '',
      rule.functions?.length ? `functions ${rule.functions.join(',')}` : '',
      rule.flags?.length ? `flags ${rule.flags.join(',')}` : '',
      rule.approvers?.length ? `approvers ${rule.approvers.join(',')}` : '',
      rule.timeout ? `timeout ${rule.timeout}` : '',
    ]
      .filter(Boolean)
      .join('  ');
    process.stdout.write(
      `    ${colour(rule.action.padEnd(7))} ${rule.classes.join(', ').padEnd(34)} ${c.dim(rule.name)}${narrow ? `  ${c.dim(narrow)}` : ''}\n`,
    );
  }
  for (const m of policy.masking) {
    process.stdout.write(
      `    ${c.magenta('mask'.padEnd(7))} ${[...(m.columns ?? []), ...(m.tags ?? []).map((t) => `tag:${t}`)].join(', ')} → ${m.mask}\n`,
    );
  }
}
