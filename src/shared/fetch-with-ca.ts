/**
 * A `fetch` that trusts an extra CA certificate (a private IdP or gateway CA).
 *
 * Node 20's global fetch is undici, and trusting a CA there needs undici's own `Agent` as the
 * `dispatcher` — a package we do not depend on. NODE_EXTRA_CA_CERTS only works when set before the
 * process starts. So requests that must trust a CA file go through node:https with that CA instead;
 * jose (`customFetch`) and openid-client (`customFetch`) both accept such a function.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';

export type FetchFunction = (url: string, init?: RequestInit) => Promise<Response>;

const cache = new Map<string, FetchFunction>();

/** The global fetch when there is no CA file; otherwise a fetch over node:https that trusts it (and the system roots). */
export function fetchTrustingCa(caFile?: string): FetchFunction {
  if (!caFile) return (url, init) => fetch(url, init);
  let fetcher = cache.get(caFile);
  if (!fetcher) {
    const agent = new Agent({ ca: [readFileSync(caFile, 'utf8'), ...systemRoots()], keepAlive: false });
    fetcher = (url, init) => nodeFetch(url, init ?? {}, agent);
    cache.set(caFile, fetcher);
  }
  return fetcher;
}

function systemRoots(): readonly string[] {
  // Passing `ca` replaces Node's bundled roots; keep them so public issuers still verify.
  return rootCertificates;
}

async function nodeFetch(url: string, init: RequestInit, agent: Agent): Promise<Response> {
  const target = new URL(url);
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  const body = await bodyBytes(init.body);
  if (body) headers['content-length'] = String(body.length);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    const req = send(
      target,
      { method: init.method ?? 'GET', headers, agent: target.protocol === 'https:' ? agent : undefined },
      (res) => {
        const status = res.statusCode ?? 0;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
        }
        const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
        // The body streams as it arrives (an MCP server's event stream never "ends" per message).
        if (noBody) res.resume();
        resolve(
          new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
            status,
            statusText: res.statusMessage,
            headers: responseHeaders,
          }),
        );
      },
    );
    req.on('error', reject);
    // One listener per request, gone with it: a long-lived client reuses one signal for every request.
    const abort = () => req.destroy(new Error('request aborted'));
    init.signal?.addEventListener('abort', abort, { once: true });
    const forget = () => init.signal?.removeEventListener('abort', abort);
    req.on('error', forget);
    req.on('response', (res) => res.on('close', forget));
    req.end(body);
  });
}

async function bodyBytes(body: RequestInit['body']): Promise<Buffer | undefined> {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof URLSearchParams) return Buffer.from(body.toString());
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(await new Response(body).arrayBuffer());
}
