/**
 * `hoopctl mcp`: the gateway's MCP tools on stdio, for local agent hosts (desktop assistants, IDEs,
 * agent frameworks) — one line in the host's config. The bridge itself (../mcp-bridge.ts) loads only
 * when this command runs: the MCP SDK would slow every other command's start.
 */
import type { Command } from 'commander';
import type { McpOptions } from '../mcp-bridge.js';

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
      const { runMcpBridge } = await import('../mcp-bridge.js');
      await runMcpBridge(opts);
    });
}
