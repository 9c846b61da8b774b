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
}

let cachedAgent: Agent | undefined;
export function httpsAgent(target: GatewayTarget): Agent | undefined {
  if (!target.url.startsWith('https:')) return undefined;
  if (!cachedAgent) {
    cachedAgent = new Agent({
      ca: target.caFile ? readFileSync(target.caFile) : undefined,
      keepAlive: false,
    });
  }
  return cachedAgent;
}

/** Call the gateway; a non-2xx answer becomes a CliError with the matching exit code. */
export async function apiRequest<T>(
  target: GatewayTarget,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<T> {
  const url = new URL(path, target.url);
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = send(url, { method, headers, agent: httpsAgent(target) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', (err) =>
      reject(new CliError(`cannot reach the gateway at ${target.url}: ${err.message}`)),
    );
    req.end(payload);
  });
  let json: unknown;
  try {
    json = body ? JSON.parse(body) : undefined;
  } catch {
    throw new CliError(`the gateway answered ${status} with a body that is not JSON`);
  }
  if (status >= 200 && status < 300) return json as T;
  const message = (json as ApiErrorBody | undefined)?.error?.message ?? `HTTP ${status}`;
  if (status === 401)
    throw new CliError(`not authenticated: ${message} (run: hoopctl login)`, ExitCode.notAuthenticated);
  if (status === 403) throw new CliError(`forbidden: ${message}`, ExitCode.denied);
  if (status === 400) throw new CliError(message, ExitCode.usage);
  throw new CliError(message);
}
