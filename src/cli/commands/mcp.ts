/**
 * `hoopctl mcp`: the gateway's MCP tools on stdio, for local agent hosts (desktop assistants, IDEs,
 * agent frameworks) — one line in the host's config. A proxy, not a second server: every tools/list
 * and tools/call goes to the gateway's /mcp with the logged-in (or machine) identity's token, so the
 * tools, their checks and their records are the gateway's own. Progress and cancellation pass through.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  CallToolResultSchema,
  ListToolsRequestSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import type { Command } from 'commander';
import { fetchTrustingCa } from '../../shared/fetch-with-ca.js';
import { MCP_HEADERS, MCP_INSTRUCTIONS, MCP_PATH, MCP_SERVER_NAME } from '../../shared/mcp.js';
import type { GatewayTarget } from '../api.js';
import { info } from '../output.js';
import { resolveGateway } from '../settings.js';
import { getAccessToken, useIdTokenFile } from '../tokens.js';

interface McpOptions {
  connection?: string;
  idTokenFile?: string;
  gateway?: string;
}

/** Longest a tool call may run with no progress, and at all (wait_for_approval waits up to an hour). */
const CALL_IDLE_MS = 120_000;
const CALL_MAX_MS = 3_700_000;

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description(
      "Serve the gateway's MCP tools on stdio, for a local agent host (Claude Desktop, VS Code, Cursor ...)",
    )
    .option(
      '--connection <name>',
      'pin the session to one connection: tools default to it and reach no other',
    )
    .option(
      '--id-token-file <path>',
      'act as the workload whose ID token is in this file (or HOOPCTL_ID_TOKEN)',
    )
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .addHelpText(
      'after',
      `
The host starts this command and speaks MCP on its stdin/stdout; diagnostics go to stderr. It acts
as the identity \`hoopctl login\` saved, or the machine identity in HOOPCTL_CLIENT_ID and
HOOPCTL_CLIENT_SECRET (or HOOPCTL_ID_TOKEN). Tools: connections, schema, query, explain,
approval_status, wait_for_approval, request_access (docs/agents.md).

Host configuration (Claude Desktop's claude_desktop_config.json, Cursor's .cursor/mcp.json):
  { "mcpServers": { "prod-db": { "command": "hoopctl", "args": ["mcp", "--connection", "prod-db"] } } }
VS Code (.vscode/mcp.json):
  { "servers": { "prod-db": { "type": "stdio", "command": "hoopctl", "args": ["mcp"] } } }

Examples:
  hoopctl mcp
  hoopctl mcp --connection prod-db
  HOOPCTL_CLIENT_ID=agent-bot HOOPCTL_CLIENT_SECRET=... hoopctl mcp`,
    )
    .action(async (opts: McpOptions) => {
      await runMcp(opts);
    });
}

async function runMcp(opts: McpOptions): Promise<void> {
  if (opts.idTokenFile) useIdTokenFile(opts.idTokenFile);
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
  local.setRequestHandler(ListToolsRequestSchema, async (request) =>
    (await remote.client()).listTools(request.params),
  );
  local.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const hostToken = extra._meta?.progressToken;
    try {
      const result = await (await remote.client()).callTool(request.params, CallToolResultSchema, {
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
      return result as CallToolResult;
    } catch (err) {
      if (err instanceof McpError) throw err;
      // The gateway could not be reached: say so as a tool error the model can read.
      return { content: [{ type: 'text', text: `hoopctl mcp: ${(err as Error).message}` }], isError: true };
    }
  });

  const stdio = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    local.onclose = () => resolve();
  });
  await local.connect(stdio);
  info(`hoopctl mcp: serving ${new URL(MCP_PATH, target.url)} on stdio`);
  await closed;
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
  return {
    client(): Promise<Client> {
      connecting ??= connect().catch((err: Error) => {
        connecting = undefined;
        throw new McpError(-32603, `cannot open an MCP session at ${target.url}${MCP_PATH}: ${err.message}`);
      });
      return connecting;
    },
    async close(): Promise<void> {
      // End the gateway's MCP session (and its database sessions) now rather than at its idle timeout.
      await transport?.terminateSession().catch(() => undefined);
      await transport?.close().catch(() => undefined);
    },
  };
}
