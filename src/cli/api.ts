/** The CLI's one way to talk to the gateway's HTTP API: JSON in and out, the bearer token attached. */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { ApiErrorBody } from '../shared/errors.js';
import { CliError, ExitCode } from '../shared/errors.js';

export interface GatewayTarget {
  /** Base URL, e.g. https://gateway.example.com:8443 */
  url: string;
  /** PEM of a private CA to trust (HOOPCTL_CA_FILE). */
  caFile?: string;
  /** The profile this target came from (settings.ts); named in every error. */
  profile?: string;
}

const agents = new Map<string, Agent>();
export function httpsAgent(target: GatewayTarget): Agent | undefined {
  if (!target.url.startsWith('https:')) return undefined;
  const key = target.caFile ?? '';
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent({ ca: target.caFile ? readFileSync(target.caFile) : undefined, keepAlive: false });
    agents.set(key, agent);
  }
  return agent;
}

function named(target: GatewayTarget): string {
  return `${target.url} (profile ${target.profile ?? 'default'})`;
}

/**
 * Why a connection to the gateway failed, in words that say what to do: the classic mix-ups are
 * https:// to a plain-HTTP port (OpenSSL's "wrong version number") and http:// to a TLS port.
 */
export function unreachable(target: GatewayTarget, err: NodeJS.ErrnoException): CliError {
  const text = err.message ?? String(err);
  const url = new URL(target.url);
  if (url.protocol === 'https:' && /wrong version number|EPROTO|packet length too long/i.test(text)) {
    url.protocol = 'http:';
    return new CliError(
      `the gateway at ${target.url} does not speak TLS: did you mean ${url.origin}? (--gateway or HOOPCTL_GATEWAY)`,
    );
  }
  if (url.protocol === 'http:' && /ECONNRESET|socket hang up|Parse Error|HPE_/i.test(`${err.code} ${text}`)) {
    url.protocol = 'https:';
    return new CliError(
      `the gateway at ${target.url} closed a plain-HTTP request: if it serves TLS, use ${url.origin}`,
    );
  }
  if (err.code === 'ECONNREFUSED') {
    return new CliError(`nothing listens at ${named(target)}: is the gateway running, and is the URL right?`);
  }
  if (/self[- ]signed|unable to verify|UNABLE_TO_GET_ISSUER|CERT_/i.test(`${err.code} ${text}`)) {
    return new CliError(
      `cannot verify the TLS certificate of ${target.url} (${text}): set HOOPCTL_CA_FILE to the CA that signed it`,
    );
  }
  return new CliError(`cannot reach the gateway at ${named(target)}: ${text}`);
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Give up after this long (completion uses a short one); no limit by default. */
  timeoutMs?: number;
}

/** Call the gateway; a non-2xx answer becomes a CliError with the matching exit code. */
export async function apiRequest<T>(
  target: GatewayTarget,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  const { status, body, contentType } = await rawRequest(target, method, path, options);
  let json: unknown;
  try {
    json = body ? JSON.parse(body) : undefined;
  } catch {
    throw notJson(target, status, contentType);
  }
  if (status >= 200 && status < 300) return json as T;
  const message = (json as ApiErrorBody | undefined)?.error?.message;
  if (!message) throw notJson(target, status, contentType);
  throw errorForStatus(target, status, message);
}

/** A refusal as the CLI reports it: 401 → exit 3, 403 → 4, 400 → 2, anything else → 1. */
export function errorForStatus(target: GatewayTarget, status: number, message: string): CliError {
  if (status === 401) {
    return new CliError(
      `not authenticated at ${named(target)}: ${message} (run: hoopctl login${target.profile && target.profile !== 'default' ? ` --profile ${target.profile}` : ''})`,
      ExitCode.notAuthenticated,
    );
  }
  if (status === 403) return new CliError(`forbidden: ${message}`, ExitCode.denied);
  if (status === 400) return new CliError(message, ExitCode.usage);
  return new CliError(message);
}

function notJson(target: GatewayTarget, status: number, contentType: string): CliError {
  return new CliError(
    `${target.url} answered ${status} (${contentType || 'no content type'}), not a hoop gateway's JSON: is ${target.url} the gateway's URL (not the identity provider's or a proxy's)?`,
  );
}

export function rawRequest(
  target: GatewayTarget,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<{ status: number; body: string; contentType: string }> {
  const url = new URL(path, target.url);
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, agent: httpsAgent(target) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          contentType: String(res.headers['content-type'] ?? ''),
        }),
      );
      res.on('error', (err) => reject(unreachable(target, err)));
    });
    if (options.timeoutMs) {
      req.setTimeout(options.timeoutMs, () =>
        req.destroy(
          Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT' }),
        ),
      );
    }
    req.on('error', (err) => reject(unreachable(target, err)));
    req.end(payload);
  });
}
