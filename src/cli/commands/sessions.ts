/** hoopctl sessions list / show / replay / export: the auditors' view of who did what, through the gateway. */
import { createWriteStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { AuditRecord, SessionSummary, StatementResultData } from '../../shared/audit.js';
import { parseDuration, parseTimeBound } from '../../shared/duration.js';
import { type ApiErrorBody, CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest, type GatewayTarget, httpsAgent } from '../api.js';
import { c, info, printable, printJson, printTable } from '../output.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';

interface GatewayOption {
  gateway?: string;
}

/** The gateway and a token for it. */
export async function connectGateway(
  options: GatewayOption,
): Promise<{ target: GatewayTarget; token: string }> {
  const target = resolveGateway(options.gateway);
  return { target, token: await getAccessToken(target) };
}

/** --since / --until as RFC 3339, checked here so a typo is a usage error before any request. */
export function timeOption(name: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return new Date(parseTimeBound(text)).toISOString();
  } catch (err) {
    throw new CliError(`--${name}: ${(err as Error).message}`, ExitCode.usage);
  }
}

/** --since and --until together: a window that ends before it starts is a usage error, not an empty answer. */
export function timeWindow(since: string | undefined, until: string | undefined) {
  const window = { since: timeOption('since', since), until: timeOption('until', until) };
  if (window.since && window.until && window.since > window.until) {
    throw new CliError(
      `--since ${since} (${window.since}) is after --until ${until} (${window.until}): the window ends before it starts`,
      ExitCode.usage,
    );
  }
  return window;
}

function queryString(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}

const who = (r: { identity?: { subject: string; name?: string } }) =>
  r.identity?.name ?? r.identity?.subject ?? '';
const shortTime = (iso: string | undefined) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

/** GET a raw body (exports, reports) into `out`; a non-2xx answer becomes the same CliError apiRequest would give. */
export async function download(
  target: GatewayTarget,
  path: string,
  token: string,
  out: Writable,
): Promise<void> {
  const url = new URL(path, target.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  await new Promise<void>((resolve, reject) => {
    const req = send(
      url,
      { method: 'GET', headers: { authorization: `Bearer ${token}` }, agent: httpsAgent(target) },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          // stdout is never ended (it is not ours to close): done when the response ends.
          const isStdout = out === process.stdout;
          res.pipe(out, { end: !isStdout });
          res.on('error', reject);
          res.on('aborted', () =>
            reject(new CliError('the gateway ended the export early: the output is incomplete')),
          );
          if (isStdout) res.on('end', () => resolve());
          else out.on('finish', () => resolve());
          out.on('error', reject);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          let message = `HTTP ${status}`;
          try {
            message = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as ApiErrorBody).error.message;
          } catch {
            // not JSON: keep the status
          }
          if (status === 401)
            reject(
              new CliError(`not authenticated: ${message} (run: hoopctl login)`, ExitCode.notAuthenticated),
            );
          else if (status === 403) reject(new CliError(`forbidden: ${message}`, ExitCode.denied));
          else if (status === 400) reject(new CliError(message, ExitCode.usage));
          else reject(new CliError(message));
        });
      },
    );
    req.on('error', (err) =>
      reject(new CliError(`cannot reach the gateway at ${target.url}: ${err.message}`)),
    );
    req.end();
  });
}

/** `purpose: 'replay'` lets the gateway's audit.accessed record tell a replay from a show. */
async function fetchSession(
  options: GatewayOption,
  id: string,
  purpose?: 'replay',
): Promise<{ id: string; records: AuditRecord[] }> {
  const { target, token } = await connectGateway(options);
  const full = await resolveSessionId(target, token, id);
  const answer = await apiRequest<{ id: string; records: AuditRecord[] }>(
    target,
    'GET',
    `/v1/sessions/${encodeURIComponent(full)}${purpose ? `?purpose=${purpose}` : ''}`,
    { token },
  );
  return { id: full, records: answer.records };
}

const FULL_SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A session id as people type it: the full id, or its first characters (as `sessions list` and the
 * help show them) when they name exactly one of the recent sessions the gateway lists (its newest 1,000).
 */
async function resolveSessionId(target: GatewayTarget, token: string, id: string): Promise<string> {
  const wanted = id.trim().toLowerCase();
  if (FULL_SESSION_ID.test(wanted)) return wanted;
  if (!/^[0-9a-f-]{4,}$/.test(wanted)) {
    throw new CliError(
      `"${id}" is not a session id (a UUID, or at least its first 4 characters)`,
      ExitCode.usage,
    );
  }
  const { sessions } = await apiRequest<{ sessions: SessionSummary[] }>(
    target,
    'GET',
    `/v1/sessions?since=${encodeURIComponent('1970-01-01T00:00:00Z')}`,
    { token },
  );
  const matches = sessions.filter((s) => s.id.toLowerCase().startsWith(wanted));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) {
    throw new CliError(
      `no session starts with ${id} among the recent ones: give the full id (hoopctl sessions list)`,
    );
  }
  throw new CliError(
    `${id} names ${matches.length} sessions (${matches
      .slice(0, 5)
      .map((s) => s.id.slice(0, 12))
      .join(', ')}${matches.length > 5 ? ', ...' : ''}): give more of the id`,
    ExitCode.usage,
  );
}

/**
 * `--identity alice` as a person means it: the subject, the name or the email, case-insensitively,
 * as a whole or by prefix (alice, alice@example.com, Alice Engineer, "alice e").
 */
export function identityMatches(identity: SessionSummary['identity'], wanted: string): boolean {
  if (!identity) return false;
  const w = wanted.trim().toLowerCase();
  const fields = [identity.subject, identity.name, identity.claims?.email].filter(
    (f): f is string => typeof f === 'string',
  );
  return fields.some((f) => f.toLowerCase().startsWith(w));
}

/** One line saying what a record is, for `show`. */
function describe(record: AuditRecord): string {
  const d = record.data as Record<string, unknown>;
  switch (record.type) {
    case 'statement':
      return `${printable(String(d.text ?? '').replace(/\s+/g, ' '))}  [${d.decision ?? '?'}${d.rule ? ` by ${d.rule}` : ''}]`;
    case 'statement.result': {
      const r = d as unknown as StatementResultData;
      return r.error
        ? `ERROR ${r.sqlstate ?? ''} ${printable(r.error)}`
        : `${r.tag ?? ''} (${r.rows ?? 0} rows, ${r.duration_ms ?? 0} ms)`;
    }
    case 'policy.blocked':
      return `blocked by ${d.rule ?? 'policy'}: ${printable(String(d.text ?? d.reason ?? ''))}`;
    case 'session.started':
      return `${who(record)} from ${record.source ?? '?'} to ${record.connection ?? '?'}`;
    case 'mcp.tool': {
      const outcome = (d.outcome ?? {}) as Record<string, unknown>;
      return `MCP ${String(d.tool)} → ${String(outcome.status ?? '?')}${d.rule ? ` (rule ${d.rule})` : ''}`;
    }
    default:
      return Object.keys(d).length ? JSON.stringify(d) : '';
  }
}

function printStatement(record: AuditRecord, offset: string): void {
  const d = record.data as Record<string, unknown>;
  process.stdout.write(
    `${c.dim(offset)} ${c.cyan(`${who(record)}@${record.connection ?? ''}>`)} ${printable(String(d.text ?? ''))}\n`,
  );
  const decision = String(d.decision ?? '');
  const rule = d.rule ? ` (rule ${d.rule})` : '';
  if (decision === 'deny') process.stdout.write(`  ${c.red(`denied${rule}`)}\n`);
  else if (decision)
    process.stdout.write(
      `  ${c.dim(`${decision}${rule}${d.approval_id ? `, approval ${d.approval_id}` : ''}`)}\n`,
    );
}

function printResult(record: AuditRecord): void {
  const r = record.data as unknown as StatementResultData;
  if (r.error || (r.sqlstate && !r.sqlstate.startsWith('00'))) {
    process.stdout.write(`  ${c.red(`ERROR ${r.sqlstate ?? ''}: ${printable(r.error ?? '')}`)}\n`);
  }
  if (r.result?.columns.length) {
    printTable(
      r.result.columns.map(printable),
      r.result.rows.map((row) => row.map((v) => (v === null || v === undefined ? v : printable(String(v))))),
    );
    if (r.result.truncated)
      process.stdout.write(c.dim(`  ... (recording kept the first ${r.result.rows.length} rows)\n`));
  }
  const masked = r.masked_columns?.length
    ? `, masked: ${(r.masked_columns as unknown[]).map(maskedColumnText).join(', ')}`
    : '';
  const parts = [r.tag, `${r.rows ?? 0} rows`, `${r.duration_ms ?? 0} ms`].filter(Boolean);
  process.stdout.write(c.dim(`  ${parts.join(' · ')}${masked}\n\n`));
}

/** A masked column as recorded: `{ column, mask, rule, ... }` (older records: a name). */
function maskedColumnText(m: unknown): string {
  if (typeof m === 'string') return m;
  const { column, mask } = (m ?? {}) as { column?: string; mask?: string };
  return mask ? `${column ?? '?'} (${mask})` : String(column ?? '?');
}

function offsetOf(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  const minutes = Math.floor(s / 60);
  return `[+${String(minutes).padStart(2, '0')}:${(s - minutes * 60).toFixed(3).padStart(6, '0')}]`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function registerSessionCommands(program: Command): void {
  const sessions = program
    .command('sessions')
    .description('List, show, replay and export recorded sessions (auditors)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl sessions list --since 24h --connection prod-db
  hoopctl sessions show 7f3c2a
  hoopctl sessions replay 7f3c2a --speed 4
  hoopctl sessions export --since 7d --format jsonl -o audit.jsonl && hoopctl audit verify audit.jsonl --public-key gateway.pub.pem

Needs membership of a policy with audit: true.`,
    );

  sessions
    .command('list')
    .description('Sessions in a time window, newest first')
    .option('--since <when>', 'start: a duration back from now (90m, 24h, 7d) or an RFC 3339 time', '24h')
    .option('--until <when>', 'end (same forms); default now')
    .option('--identity <who>', 'only sessions of this identity: subject, name or email, or the start of one')
    .option('--connection <name>', 'only sessions to this connection')
    .option(
      '--json [fields]',
      'print JSON: { "sessions": [{ id, identity, connection, source, started, ended?, statements, denied }] }',
    )
    .option('--gateway <url>', 'gateway URL (default HOOPCTL_GATEWAY or the one login remembered)')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl sessions list
  hoopctl sessions list --since 2026-11-01T00:00:00Z --until 2026-11-02T00:00:00Z --identity alice
  hoopctl sessions list --since 7d --json | jq '.sessions[] | select(.denied > 0)'`,
    )
    .action(
      async (
        opts: GatewayOption & {
          since?: string;
          until?: string;
          identity?: string;
          connection?: string;
          json?: boolean | string;
        },
      ) => {
        const query = queryString({ ...timeWindow(opts.since, opts.until), connection: opts.connection });
        const { target, token } = await connectGateway(opts);
        const answer = await apiRequest<{ sessions: SessionSummary[] }>(
          target,
          'GET',
          `/v1/sessions${query}`,
          { token },
        );
        // Matched here, not by the gateway's exact-subject filter: see identityMatches.
        if (opts.identity)
          answer.sessions = answer.sessions.filter((s) => identityMatches(s.identity, opts.identity!));
        if (opts.json) return printJson(answer, opts.json);
        if (answer.sessions.length === 0) return info('no sessions in that window');
        printTable(
          ['SESSION', 'STARTED', 'ENDED', 'IDENTITY', 'CONNECTION', 'SOURCE', 'STATEMENTS', 'DENIED'],
          answer.sessions.map((s) => [
            s.id,
            shortTime(s.started),
            s.ended ? shortTime(s.ended) : 'open',
            who(s),
            s.connection,
            s.source,
            s.statements,
            s.denied ? c.red(String(s.denied)) : 0,
          ]),
        );
      },
    );

  sessions
    .command('show <id>')
    .description("A session's records, in order")
    .option(
      '--json [fields]',
      'print JSON: { "id": "...", "records": [AuditRecord, ...] } (record fields: docs/audit.md)',
    )
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      '\nExamples:\n  hoopctl sessions show 7f3c2a\n  hoopctl sessions show 7f3c2a --json > session.json',
    )
    .action(async (id: string, opts: GatewayOption & { json?: boolean | string }) => {
      const session = await fetchSession(opts, id);
      const records = session.records;
      if (opts.json) return printJson(session, opts.json);
      printTable(
        ['SEQ', 'TIME', 'TYPE', 'WHAT'],
        records.map((r) => [r.seq, shortTime(r.time), r.type, describe(r)]),
      );
    });

  sessions
    .command('replay <id>')
    .description(
      'Play a session back as it happened: each statement, its decision, its result, with the recorded timing',
    )
    .option('--speed <n>', 'replay this many times faster; 0 = no waiting', '1')
    .option('--max-gap <duration>', 'never wait longer than this between two statements (idle time)', '5s')
    .option('--json [fields]', 'print the records as JSON, at once: { id, records: [AuditRecord, ...] }')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl sessions replay 7f3c2a
  hoopctl sessions replay 7f3c2a --speed 10
  hoopctl sessions replay 7f3c2a --speed 0 > session.txt

Results show what the client received: masked values, never clear ones, and only the first rows
the gateway's recording kept (recording.max_rows / max_bytes).`,
    )
    .action(
      async (
        id: string,
        opts: GatewayOption & { speed: string; maxGap: string; json?: boolean | string },
      ) => {
        const speed = Number(opts.speed);
        if (!Number.isFinite(speed) || speed < 0)
          throw new CliError('--speed: expected a number >= 0', ExitCode.usage);
        let maxGap: number;
        try {
          maxGap = parseDuration(opts.maxGap);
        } catch (err) {
          throw new CliError(`--max-gap: ${(err as Error).message}`, ExitCode.usage);
        }
        const session = await fetchSession(opts, id, 'replay');
        const records = session.records;
        if (opts.json) return printJson(session, opts.json);
        id = session.id;
        const start = Date.parse(records[0]!.time);
        let previous = start;
        for (const record of records) {
          const at = Date.parse(record.time);
          if (speed > 0 && (record.type === 'statement' || record.type === 'policy.blocked')) {
            await sleep(Math.min(at - previous, maxGap) / speed);
            previous = at;
          }
          const offset = offsetOf(at - start);
          switch (record.type) {
            case 'session.started':
              process.stdout.write(c.bold(`${offset} session ${id}: ${describe(record)}\n\n`));
              break;
            case 'statement':
              printStatement(record, offset);
              break;
            case 'statement.result':
              printResult(record);
              break;
            case 'policy.blocked':
              process.stdout.write(`${c.dim(offset)} ${c.red(describe(record))}\n\n`);
              break;
            case 'session.ended':
              process.stdout.write(c.bold(`${offset} session ended\n`));
              break;
            default:
              process.stdout.write(c.dim(`${offset} ${record.type} ${describe(record)}\n`));
          }
        }
      },
    );

  sessions
    .command('export')
    .description(
      'Export the audit log of a time window (jsonl verifies offline with: hoopctl audit verify FILE)',
    )
    .requiredOption('--since <when>', 'start: a duration back from now (24h, 7d) or an RFC 3339 time')
    .option('--until <when>', 'end (same forms); default now')
    .option('--format <format>', 'jsonl (with checkpoints and public keys) or csv', 'jsonl')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--gateway <url>', 'gateway URL')
    .addHelpText(
      'after',
      `
Examples:
  hoopctl sessions export --since 30d -o audit-november.jsonl
  hoopctl sessions export --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z --format csv -o nov.csv

jsonl: one JSON object per line: {"export":{...}} first, then {"key":{...}}, {"checkpoint":{...}}
and {"record":{...}} lines. It reaches back and forward to the nearest signed checkpoints so it
verifies on its own. csv: one row per record in the window; it carries no proof.`,
    )
    .action(
      async (opts: GatewayOption & { since: string; until?: string; format: string; output?: string }) => {
        if (opts.format !== 'jsonl' && opts.format !== 'csv') {
          throw new CliError(`--format: expected jsonl or csv, got "${opts.format}"`, ExitCode.usage);
        }
        const query = queryString({ ...timeWindow(opts.since, opts.until), format: opts.format });
        const { target, token } = await connectGateway(opts);
        const out = opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : process.stdout;
        await download(target, `/v1/export${query}`, token, out);
        if (opts.output) info(`wrote ${opts.output}`);
      },
    );
}
