/**
 * The stdio bridge behind `hoopctl mcp`: a proxy, not a second server. Every tools/list and
 * tools/call goes to the gateway's /mcp with the logged-in (or machine) identity's token, so the
 * tools, their checks and their records are the gateway's own. Progress and cancellation pass through.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CallToolResultSchema,
  type JSONRPCMessage,
  ListToolsRequestSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { fetchTrustingCa } from '../shared/fetch-with-ca.js';
import { MCP_HEADERS, MCP_INSTRUCTIONS, MCP_PATH, MCP_SERVER_NAME } from '../shared/mcp.js';
import type { GatewayTarget } from './api.js';
import { info } from './output.js';
import { resolveGateway } from './settings.js';
import { getAccessToken } from './tokens.js';

export interface McpOptions {
  connection?: string;
  gateway?: string;
}

/** Longest a tool call may run with no progress, and at all (wait_for_approval waits up to an hour). */
const CALL_IDLE_MS = 120_000;
const CALL_MAX_MS = 3_700_000;

export async function runMcpBridge(opts: McpOptions): Promise<void> {
  const target = resolveGateway(opts.gateway);
  // Fail at start, with the exit code for it, rather than on the host's first call.
  await getAccessToken(target);

  const local = new Server(
    {
      name: MCP_SERVER_NAME,
      title: 'hoop gateway (via hoopctl mcp)',
      version: process.env.npm_package_version ?? '0.1.0',
    },
    { capabilities: { tools: {} }, instructions: MCP_INSTRUCTIONS },
  );
  const remote = lazyRemote(target, opts, () => local.getClientVersion());
  local.setRequestHandler(ListToolsRequestSchema, (request) =>
    remote.use((client) => client.listTools(request.params)),
  );
  local.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const hostToken = extra._meta?.progressToken;
    try {
      const call = (client: Client) =>
        client.callTool(request.params, CallToolResultSchema, {
          signal: extra.signal,
          timeout: CALL_IDLE_MS,
          resetTimeoutOnProgress: true,
          maxTotalTimeout: CALL_MAX_MS,
          onprogress: (p) => {
            if (hostToken === undefined) return;
            void extra
              .sendNotification({
                method: 'notifications/progress',
                params: { ...p, progressToken: hostToken },
              })
              .catch(() => undefined);
          },
        });
      return (await remote.use(call)) as CallToolResult;
    } catch (err) {
      if (err instanceof McpError) throw err;
      // The gateway could not be reached: say so as a tool error the model can read.
      return { content: [{ type: 'text', text: `hoopctl mcp: ${(err as Error).message}` }], isError: true };
    }
  });

  const stdio = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    local.onclose = () => resolve();
    // The host closed our stdin: answer what is in flight, then end the gateway's session too.
    process.stdin.once('end', resolve);
  });
  await local.connect(stdio);
  const answered = trackRequests(stdio);
  info(`hoopctl mcp: serving ${new URL(MCP_PATH, target.url)} on stdio`);
  await closed;
  await answered();
  await local.close();
  await remote.close();
}

/** The connection to the gateway's /mcp, made on first use with the host's name and version. */
function lazyRemote(
  target: GatewayTarget,
  opts: McpOptions,
  host: () => { name: string; version: string } | undefined,
) {
  let connecting: Promise<Client> | undefined;
  let transport: StreamableHTTPClientTransport | undefined;
  const base = fetchTrustingCa(target.caFile);
  // Every request carries a fresh token (refreshed as it nears expiry).
  const authedFetch = async (url: string | URL, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${await getAccessToken(target)}`);
    headers.set(MCP_HEADERS.transport, 'stdio');
    if (opts.connection) headers.set(MCP_HEADERS.connection, opts.connection);
    return base(url.toString(), { ...init, headers });
  };
  const connect = async () => {
    const who = host();
    const client = new Client({ name: who?.name ?? 'unknown', version: who?.version ?? 'unknown' });
    transport = new StreamableHTTPClientTransport(new URL(MCP_PATH, target.url), { fetch: authedFetch });
    await client.connect(transport);
    return client;
  };
  const client = (): Promise<Client> => {
    connecting ??= connect().catch((err: Error) => {
      connecting = undefined;
      throw new McpError(-32603, `cannot open an MCP session at ${target.url}${MCP_PATH}: ${err.message}`);
    });
    return connecting;
  };
  return {
    /**
     * Run `work` with the gateway session; if the gateway no longer knows it (restarted, or closed it
     * when idle: 404), open a new one and run it again — the request was never processed.
     */
    async use<T>(work: (client: Client) => Promise<T>): Promise<T> {
      try {
        return await work(await client());
      } catch (err) {
        if (!(err instanceof StreamableHTTPError && err.code === 404)) throw err;
        connecting = undefined;
        return work(await client());
      }
    },
    async close(): Promise<void> {
      // End the gateway's MCP session (and its database sessions) now rather than at its idle timeout.
      await transport?.terminateSession().catch(() => undefined);
      await transport?.close().catch(() => undefined);
    },
  };
}

/** Which of the host's requests are still unanswered; the returned function waits until none is. */
function trackRequests(transport: StdioServerTransport): () => Promise<void> {
  const open = new Set<string | number>();
  let settled: (() => void) | undefined;
  const receive = transport.onmessage;
  transport.onmessage = (message: JSONRPCMessage) => {
    if ('method' in message && 'id' in message) open.add(message.id);
    receive?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message: JSONRPCMessage) => {
    await send(message);
    if (
      !('method' in message) &&
      'id' in message &&
      message.id !== undefined &&
      open.delete(message.id) &&
      open.size === 0
    )
      settled?.();
  };
  return () => (open.size === 0 ? Promise.resolve() : new Promise((resolve) => (settled = resolve)));
}
