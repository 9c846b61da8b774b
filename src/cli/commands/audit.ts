/** hoopctl audit verify: recompute the hash chain and check the signed checkpoints, online or of an export. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { SigningPublicKey, VerifyResult } from '../../shared/audit.js';
import { keyIdOf, verifyChain } from '../../shared/audit-chain.js';
import { parseExport } from '../../shared/audit-export.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest } from '../api.js';
import { c, info, printJson, warn } from '../output.js';
import { connectGateway } from './sessions.js';

interface VerifyOptions {
  gateway?: string;
  publicKey?: string[];
  json?: boolean;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, ExitCode.usage);
  }
}

/** Verify an export file; with pinned keys, only checkpoints those keys signed count. */
function verifyFile(
  path: string,
  pinned: string[] | undefined,
): { result: VerifyResult; keys: SigningPublicKey[] } {
  let parsed: ReturnType<typeof parseExport>;
  try {
    parsed = parseExport(readText(path));
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
  if (!parsed.header)
    throw new CliError(`${path}: not a hoop audit export (no header line); use --format jsonl`);
  let keys = parsed.keys;
  if (pinned?.length) {
    const trusted = new Set(pinned.map((file) => keyIdOf(readText(file))));
    keys = keys.filter((k) => trusted.has(keyIdOf(k.public_key)) && trusted.has(k.key_id));
  } else {
    warn(
      'the public keys were taken from the file itself; pin the gateway key with --public-key to prove who signed',
    );
  }
  return { result: verifyChain(parsed.records, parsed.checkpoints, keys), keys };
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('Check the audit log is intact')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl audit verify                          # the gateway's log, online (audit role)
  hoopctl sessions export --since 7d --format jsonl -o week.jsonl
  hoopctl audit verify week.jsonl               # offline, from the export alone
`,
    );
  audit
    .command('verify [file]')
    .description(
      'Recompute the hash chain and check the signed checkpoints: of an export FILE (offline), or online',
    )
    .option(
      '--public-key <pem...>',
      'offline: trust only these public key files (PEM), not the keys inside the file',
    )
    .option(
      '--json',
      'print JSON: { ok: true, count, first_seq, last_seq, checkpoints } or { ok: false, seq, reason }',
    )
    .option('--gateway <url>', 'online: gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl audit verify                                    # the gateway verifies its whole log
  hoopctl sessions export --since 30d -o audit.jsonl
  hoopctl audit verify audit.jsonl --public-key gateway-audit.pub.pem

Exit 0 when intact; exit 1 with the first broken sequence number and why (an edited, missing,
reordered or inserted record, a rewritten chain that no longer matches a signed checkpoint, or
records after the last signed checkpoint).`,
    )
    .action(async (file: string | undefined, opts: VerifyOptions) => {
      let result: VerifyResult;
      let source: string;
      if (file) {
        ({ result } = verifyFile(file, opts.publicKey));
        source = file;
      } else {
        if (opts.publicKey?.length) throw new CliError('--public-key applies to a FILE only', ExitCode.usage);
        const { target, token } = await connectGateway(opts);
        result = await apiRequest<VerifyResult>(target, 'GET', '/v1/audit/verify', { token });
        source = target.url;
      }
      if (opts.json) printJson(result);
      if (!result.ok) {
        if (opts.json) {
          process.exitCode = ExitCode.error;
          return;
        }
        throw new CliError(
          `audit log BROKEN at seq ${result.seq}: ${result.reason} (${source})`,
          ExitCode.error,
        );
      }
      if (!opts.json) {
        const range = result.count ? ` (seq ${result.first_seq}..${result.last_seq})` : '';
        info(
          `${c.green('intact:')} ${result.count} records${range}, ${result.checkpoints} signed checkpoints verified (${source})`,
        );
      }
    });
}
