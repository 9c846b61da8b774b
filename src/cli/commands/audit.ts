/**
 * hoopctl audit verify: recompute every hash chain and check it is covered by checkpoints signed by keys
 * the auditor trusts — online (the gateway's verdict with its pinned keys), or locally on an export, with
 * the keys given by --public-key and optionally against a witness's copy of the checkpoints.
 */
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { Checkpoint, TrustedKey, VerifyResult } from '../../shared/audit.js';
import { trustedKeyOf } from '../../shared/audit-chain.js';
import { readWitness, verifyExportLines } from '../../shared/audit-export.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest } from '../api.js';
import { c, info, printJson, warn } from '../output.js';
import { connectGateway, download } from './sessions.js';

interface VerifyOptions {
  gateway?: string;
  publicKey?: string[];
  witness?: string;
  json?: boolean;
}

function lines(path: string): AsyncIterable<string> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  stream.on('error', () => undefined); // reported by the first read below
  return createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
}

async function readLines<T>(
  path: string,
  what: string,
  read: (l: AsyncIterable<string>) => Promise<T>,
): Promise<T> {
  try {
    return await read(lines(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR')
      throw new CliError(`cannot read ${what} ${path}: ${code}`, ExitCode.usage);
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
}

function pinnedKeys(files: string[] | undefined): TrustedKey[] {
  return (files ?? []).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`--public-key: cannot read ${file}: ${(err as Error).message}`, ExitCode.usage);
    }
    if (/PRIVATE KEY/.test(text))
      throw new CliError(`--public-key: ${file} is a private key; give its public half`, ExitCode.usage);
    try {
      return trustedKeyOf(text, file);
    } catch {
      throw new CliError(`--public-key: ${file} is not a PEM public key`, ExitCode.usage);
    }
  });
}

/** Verify an export file locally with the pinned keys (and a witness's checkpoints). */
async function verifyFile(path: string, keys: TrustedKey[], witness: Checkpoint[] | undefined) {
  const { result, header } = await readLines(path, 'the export', (l) =>
    verifyExportLines(l, { trustedKeys: keys, witness }),
  );
  return { result, complete: header?.complete ?? false };
}

function printVerdict(result: VerifyResult, source: string, how: string): void {
  if (!result.ok) {
    process.stdout.write(
      `BROKEN: chain ${result.chain} at seq ${result.seq}: ${result.reason} (${source})\n`,
    );
    return;
  }
  const chains = result.chains
    .map((ch) => `${ch.chain} ${ch.first_seq ?? '-'}..${ch.last_seq ?? '-'}`)
    .join(', ');
  process.stdout.write(
    `${c.green('intact:')} ${result.count} records in ${result.chains.length} chain${result.chains.length === 1 ? '' : 's'}${chains ? ` (${chains})` : ''}, ${result.checkpoints} trusted checkpoints matched; ${how} (${source})\n`,
  );
  for (const w of result.warnings) warn(w);
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('Check the audit log is intact')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl audit verify                                  # the gateway verifies its log (audit role)
  hoopctl sessions export --since 7d --format jsonl -o week.jsonl
  hoopctl audit verify week.jsonl --public-key gateway.pub.pem
`,
    );
  audit
    .command('verify [file]')
    .description(
      'Recompute every hash chain and check it is covered by checkpoints signed by trusted keys: of an export FILE, or online',
    )
    .option(
      '--public-key <pem...>',
      'trust these public key files (PEM) and no others; online, the gateway export is then verified here',
    )
    .option(
      '--witness <file>',
      'also check the checkpoints against a witness copy (an audit file sink, or an export)',
    )
    .option(
      '--json',
      'print the verdict as JSON: { ok: true, count, checkpoints, chains: [...], trusted_keys, warnings } or { ok: false, chain, seq, reason }',
    )
    .option('--gateway <url>', 'online: gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl audit verify                                     # the gateway's verdict, with the keys it pins
  hoopctl audit verify --public-key gw.pub.pem             # the whole log, verified here with your key
  hoopctl sessions export --since 30d -o audit.jsonl
  hoopctl audit verify audit.jsonl --public-key gw-1.pub.pem --public-key gw-2.pub.pem
  hoopctl audit verify --public-key gw.pub.pem --witness /var/log/hoop/audit.jsonl

Trust: only keys you pin count. Online without --public-key the gateway verifies with the keys it pins
(its own, its retired ones, audit.trusted_keys); with --public-key the CLI downloads the log and verifies
it here. Keys listed inside the store or an export are never trusted by themselves.

Exit 0 when every chain is intact and covered by trusted checkpoints; exit 1 with the chain and first
broken sequence number and why (an edited, missing, reordered or inserted record, a rewritten chain, a
checkpoint deleted from the store but held by the witness, a chain removed or cut short, records not
covered by a trusted checkpoint, an alarm); exit 2 for bad usage.`,
    )
    .action(async (file: string | undefined, opts: VerifyOptions) => {
      const keys = pinnedKeys(opts.publicKey);
      const witness = opts.witness ? await readLines(opts.witness, 'the witness', readWitness) : undefined;
      if (opts.witness && keys.length === 0)
        throw new CliError(
          '--witness needs --public-key: the witness is judged with the keys you trust',
          ExitCode.usage,
        );
      let result: VerifyResult;
      let source: string;
      let how: string;
      if (file) {
        if (keys.length === 0)
          warn(
            'no --public-key: no checkpoint is trusted, so nothing is covered (the keys inside the file are not trusted)',
          );
        ({ result } = await verifyFile(file, keys, witness));
        source = file;
        how = `verified here with ${keys.length} pinned key${keys.length === 1 ? '' : 's'}`;
      } else if (keys.length > 0) {
        const { target, token } = await connectGateway(opts);
        const dir = mkdtempSync(join(tmpdir(), 'hoopctl-verify-'));
        try {
          const path = join(dir, 'export.jsonl');
          await download(target, '/v1/export?format=jsonl', token, createWriteStream(path, { mode: 0o600 }));
          ({ result } = await verifyFile(path, keys, witness));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        source = target.url;
        how = `the gateway's whole log verified here with ${keys.length} pinned key${keys.length === 1 ? '' : 's'}`;
      } else {
        const { target, token } = await connectGateway(opts);
        result = await apiRequest<VerifyResult>(target, 'GET', '/v1/audit/verify', { token });
        source = target.url;
        how = `verified by the gateway with the keys it pins (${result.trusted_keys?.join(', ') ?? '?'})`;
      }
      if (opts.json) printJson(result);
      else printVerdict(result, source, how);
      if (!result.ok) {
        if (!opts.json)
          info(`audit log BROKEN in chain ${result.chain} at seq ${result.seq}: ${result.reason}`);
        process.exitCode = ExitCode.error;
      }
    });
}
