/**
 * hoopctl report: the signed compliance report the gateway computes from its log (auditors), and
 * `hoopctl report verify`: its signature against a pinned key, and its figures recomputed from an export.
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { type AuditRecord, type Checkpoint, chainOf, type SigningPublicKey } from '../../shared/audit.js';
import { EXPORT_FORMAT, type ExportHeader } from '../../shared/audit-export.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import {
  type ComplianceReport,
  compareFigures,
  embeddedReport,
  FRAMEWORKS,
  PeriodReader,
  type PinnedKey,
  parseFrameworks,
  pinnedKey,
  REPORT_FORMAT,
  REPORT_FORMATS,
  type ReportFormat,
  recomputedFigures,
  type SignatureCheck,
  verifyDocument,
  verifyReportSignature,
} from '../../shared/report/index.js';
import { c, info, printJson, progress } from '../output.js';
import { connectGateway, download, timeWindow } from './sessions.js';

interface ReportOptions {
  framework?: string[];
  since: string;
  until?: string;
  connection?: string;
  format?: string;
  json?: boolean;
  output?: string;
  gateway?: string;
}

/** --format, else --json, else the output file's extension, else Markdown (readable in a terminal). */
function formatOf(opts: ReportOptions): ReportFormat {
  const format = opts.format ?? (opts.json ? 'json' : undefined) ?? extensionFormat(opts.output) ?? 'md';
  if (!REPORT_FORMATS.includes(format as ReportFormat))
    throw new CliError(`--format: expected ${REPORT_FORMATS.join(', ')}, got "${format}"`, ExitCode.usage);
  return format as ReportFormat;
}

function extensionFormat(file: string | undefined): ReportFormat | undefined {
  const ext = /\.([a-z]+)$/i.exec(file ?? '')?.[1]?.toLowerCase();
  if (ext === 'html' || ext === 'htm') return 'html';
  if (ext === 'md' || ext === 'markdown') return 'md';
  if (ext === 'json') return 'json';
  return undefined;
}

async function generate(opts: ReportOptions): Promise<void> {
  let frameworks: string[];
  try {
    frameworks = parseFrameworks(opts.framework ?? ['all']);
  } catch (err) {
    throw new CliError(`--framework: ${(err as Error).message}`, ExitCode.usage);
  }
  const format = formatOf(opts);
  const query = new URLSearchParams();
  for (const f of frameworks) query.append('framework', f);
  const { since, until } = timeWindow(opts.since, opts.until);
  query.set('since', since!);
  if (until) query.set('until', until);
  if (opts.connection) query.set('connection', opts.connection);
  query.set('format', format);
  const { target, token } = await connectGateway(opts);
  const spinner = progress(`computing the ${frameworks.join(', ')} report from the gateway's log …`);
  const out = opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : process.stdout;
  try {
    await download(target, `/v1/report?${query}`, token, out);
  } catch (err) {
    spinner.fail('the report could not be made');
    throw err;
  }
  if (opts.output)
    spinner.succeed(
      `wrote ${opts.output} (check it: hoopctl report verify ${opts.output} --public-key KEY.pem)`,
    );
  else spinner.stop();
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, ExitCode.usage);
  }
}

interface VerifyOptions {
  publicKey?: string[];
  export?: string;
  json?: boolean;
}

/** The report inside FILE and the verdict on its signature(s): the document's, and the JSON's own. */
function checkSignature(
  file: string,
  keys: PinnedKey[],
): { report: ComplianceReport; signature: SignatureCheck } {
  const text = readText(file);
  if (text.trimStart().startsWith('{')) {
    let report: ComplianceReport;
    try {
      report = JSON.parse(text) as ComplianceReport;
    } catch {
      throw new CliError(`${file}: not JSON, HTML or Markdown of a hoop report`);
    }
    if (report.format !== REPORT_FORMAT)
      throw new CliError(`${file}: not a ${REPORT_FORMAT} (format member)`);
    return { report, signature: verifyReportSignature(report, keys) };
  }
  const report = embeddedReport(text);
  if (report?.format !== REPORT_FORMAT) throw new CliError(`${file}: no hoop report found inside it`);
  const document = verifyDocument(text, keys);
  if (!document.ok) return { report, signature: document };
  const inner = verifyReportSignature(report, keys);
  return {
    report,
    signature: inner.ok ? document : { ok: false, reason: `the embedded report: ${inner.reason}` },
  };
}

interface Recomputation {
  ok: boolean;
  problems: string[];
  records: number;
}

/** Read an export line by line: verify it with the pinned keys and count its records of the period. */
async function recompute(
  report: ComplianceReport,
  exportFile: string,
  pinned: PinnedKey[],
): Promise<Recomputation> {
  const scope = { from: report.period.from, to: report.period.to, connection: report.scope?.connection };
  let header: ExportHeader | undefined;
  const keys: SigningPublicKey[] = [];
  const checkpoints: Checkpoint[] = [];
  let reader: PeriodReader | undefined;
  const heads = new Map(report.chain_heads.map((h) => [`${h.chain}\u0000${h.seq}`, h.hash]));
  const problems: string[] = [];
  const lines = createInterface({
    input: createReadStream(exportFile, 'utf8'),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      if (!raw.trim()) continue;
      const line = JSON.parse(raw) as {
        export?: ExportHeader;
        key?: SigningPublicKey;
        checkpoint?: Checkpoint;
        record?: AuditRecord;
      };
      if (line.export) header = line.export;
      else if (line.key) keys.push(line.key);
      else if (line.checkpoint) checkpoints.push(line.checkpoint);
      else if (line.record) {
        reader ??= new PeriodReader(scope, checkpoints, trustedKeys(pinned, keys));
        reader.add(line.record);
        const head = heads.get(`${chainOf(line.record)}\u0000${line.record.seq}`);
        if (head !== undefined && head !== line.record.hash)
          problems.push(
            `chain head seq ${line.record.seq}: the export's record has another hash than the report names`,
          );
      } else throw new Error('expected one of export, key, checkpoint, record');
    }
  } catch (err) {
    throw new CliError(`${exportFile}: line ${n}: ${(err as Error).message}`);
  }
  if (header?.format !== EXPORT_FORMAT) throw new CliError(`${exportFile}: not a hoop audit export (jsonl)`);
  problems.push(...coverage(header, report));
  reader ??= new PeriodReader(scope, checkpoints, trustedKeys(pinned, keys));
  const evidence = reader.finish();
  if (evidence.verified === false)
    problems.unshift('the export does not verify with the pinned key(s) (run hoopctl audit verify on it)');
  problems.push(...compareFigures(report, recomputedFigures(evidence, report.frameworks)));
  return { ok: problems.length === 0, problems, records: evidence.records };
}

/** Only pinned keys are trusted; the export's entry for a pinned key adds its retirement time, never trust. */
function trustedKeys(pinned: PinnedKey[], fromExport: SigningPublicKey[]): SigningPublicKey[] {
  return pinned.map((k) => {
    const listed = fromExport.find((e) => e.key_id === k.key_id);
    return {
      key_id: k.key_id,
      public_key: k.public_key,
      created_at: listed?.created_at ?? '',
      retired_at: listed?.retired_at,
    };
  });
}

function coverage(header: ExportHeader, report: ComplianceReport): string[] {
  const since = header.since ? Date.parse(header.since) : Number.NEGATIVE_INFINITY;
  const until = header.until ? Date.parse(header.until) : Number.POSITIVE_INFINITY;
  if (since <= Date.parse(report.period.from) && until >= Date.parse(report.period.to)) return [];
  return [
    `the export covers ${header.since ?? 'the beginning'} to ${header.until ?? 'its end'}, not the report's period (export it with --since ${report.period.from} --until ${report.period.to})`,
  ];
}

async function verify(file: string, opts: VerifyOptions): Promise<void> {
  if (!opts.publicKey?.length) {
    throw new CliError(
      "pin the gateway's public key with --public-key FILE (audit-signing-key.pub.pem): a key carried by the report itself proves nothing",
      ExitCode.usage,
    );
  }
  const keys = opts.publicKey.map((path) => {
    try {
      return pinnedKey(readText(path));
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`${path}: not a PEM public key`, ExitCode.usage);
    }
  });
  const { report, signature } = checkSignature(file, keys);
  const figures = opts.export && signature.ok ? await recompute(report, opts.export, keys) : undefined;
  const ok = signature.ok && (figures?.ok ?? true);
  if (opts.json) {
    printJson({
      ok,
      file,
      framework: report.framework,
      period: report.period,
      signature,
      ...(figures ? { figures } : {}),
    });
    if (!ok) process.exitCode = ExitCode.error;
    return;
  }
  if (!signature.ok) throw new CliError(`${file}: signature INVALID: ${signature.reason}`);
  info(
    `${c.green('signature valid:')} ${file} (${report.framework}, ${report.period.from} to ${report.period.to}) signed by key ${signature.key_id}`,
  );
  if (!figures) return;
  if (!figures.ok) {
    for (const p of figures.problems.slice(0, 20)) info(`  ${p}`);
    throw new CliError(
      `${file}: figures do NOT match the export ${opts.export} (${figures.problems.length} differences)`,
    );
  }
  info(
    `${c.green('figures match:')} every figure and exception recomputed from ${opts.export} (${figures.records} records in the period)`,
  );
}

export function registerReportCommands(program: Command): void {
  const report = program
    .command('report')
    .description(
      'The signed compliance report (SOC 2, PCI DSS v4.0, NIST SP 800-53) the gateway computes from its log',
    )
    .option('--framework <name...>', `${FRAMEWORKS.join(', ')} or all (repeatable)`, ['all'])
    .option(
      '--since <when>',
      'start of the period: a duration back from now (90d) or an RFC 3339 time',
      '90d',
    )
    .option('--until <when>', 'end of the period (same forms); default now')
    .option('--connection <name>', "only this connection's records (and gateway-wide ones)")
    .option('--format <format>', "html, md or json (default: from -o FILE's extension, else md)")
    .option('--json', 'the same as --format json')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--gateway <url>', 'gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl report --framework soc2 -o soc2-q4.html
  hoopctl report --framework pci-dss-4 --since 2026-10-01T00:00:00Z --until 2027-01-01T00:00:00Z -o pci.md
  hoopctl report --framework all --connection prod-db --json > report.json
  hoopctl report verify soc2-q4.html --public-key audit-signing-key.pub.pem

Needs membership of a policy with audit: true. The report is signed with the gateway's audit key;
each control lists what hoopctl enforces, the evidence of the period, the records to review
(exceptions, with session ids for hoopctl sessions show) and what lies outside hoopctl.`,
    )
    .action((opts: ReportOptions) => generate(opts));

  report
    .command('verify <file>')
    .description("Check a report's signature with a pinned key; with --export, recompute its figures")
    .option('--public-key <pem...>', "the gateway's public key file(s) (PEM) to trust (required)")
    .option(
      '--export <file>',
      'a jsonl export of the same period (hoopctl sessions export) to recompute every figure from',
    )
    .option(
      '--json',
      'print JSON: { ok, signature: { ok, key_id | reason }, figures?: { ok, problems, records } }',
    )
    .addHelpText(
      'after',
      `
Examples:
  hoopctl report verify soc2.html --public-key audit-signing-key.pub.pem
  hoopctl sessions export --since 2026-10-01T00:00:00Z --until 2027-01-01T00:00:00Z -o q4.jsonl
  hoopctl report verify pci.json --public-key audit-signing-key.pub.pem --export q4.jsonl

Exit 0 when the signature is valid (and every figure matches the export); 1 otherwise, saying why.
Works offline: nothing is asked of the gateway.`,
    )
    // `--json` is also an option of `report` itself, which commander lets claim it: read both.
    .action((file: string, _opts: VerifyOptions, command: Command) =>
      verify(file, command.optsWithGlobals()),
    );
}
