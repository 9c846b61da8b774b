/**
 * One MCP session's server (the SDK's low-level `Server`): lists the tools and runs each call — input
 * checked against the tool's schema, the handler run as the identity verified for this very request,
 * and every call, refused or not, written to the audit chain before its result is delivered.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { AuditRecordInput } from '../../src/shared/audit.js';
import type { Identity } from '../../src/shared/identity.js';
import { MCP_INSTRUCTIONS, MCP_SERVER_NAME, MCP_TOOLS, type McpClientInfo } from '../../src/shared/mcp.js';
import { HttpError } from '../transport/router.js';
import { approvalStatusTool, waitForApprovalTool } from './approval-tools.js';
import { type CallContext, type CallSummary, type ToolDeps, ToolError, type ToolResult } from './context.js';
import type { DatabaseSessions } from './db-sessions.js';
import { connectionsTool, explainTool, requestAccessTool, schemaTool } from './info-tools.js';
import { SessionClosed } from './pg-client.js';
import { queryTool } from './query-tool.js';
import { toolRecord } from './record.js';
import { inputSchemas, outputSchemas, type ToolName } from './schemas.js';

type Handler = (deps: ToolDeps, ctx: CallContext, input: never) => Promise<ToolResult>;

interface ToolSpec {
  title: string;
  description: string;
  readOnly: boolean;
  handler: Handler;
}

/** The tools, by their stable names (docs/agents.md). */
const TOOLS: Record<ToolName, ToolSpec> = {
  [MCP_TOOLS.connections]: {
    title: 'Connections',
    description:
      'The databases this identity may reach through the gateway, with the rules (allow / deny / approve by statement class) and masking that apply, the per-call limits, and any agent guardrails and budget.',
    readOnly: true,
    handler: connectionsTool,
  },
  [MCP_TOOLS.schema]: {
    title: 'Schema',
    description:
      'Tables and columns of a connection with their types, read through the gateway (policy applies), and which columns are masked for you (mask and rule).',
    readOnly: true,
    handler: schemaTool as Handler,
  },
  [MCP_TOOLS.query]: {
    title: 'Run SQL',
    description:
      'Run SQL as your identity: one statement with bound params ($1, $2 ...), or a script run statement by statement. Returns rows (text, masked where a rule says so) with column types, cut at the row/byte limits with truncated: true. A statement needing approval returns status pending_approval and an approval id (then call wait_for_approval); a refused one is an error naming the rule and SQLSTATE.',
    readOnly: false,
    handler: queryTool as Handler,
  },
  [MCP_TOOLS.explain]: {
    title: 'Explain a decision',
    description:
      'The policy decision for SQL without running it: allow, deny or approve, the rule and policy that decide, and what would be needed (e.g. approval by 1 approver from db-reviewers).',
    readOnly: true,
    handler: explainTool as Handler,
  },
  [MCP_TOOLS.approvalStatus]: {
    title: 'Approval status',
    description:
      'The state of an approval request you filed (or an access request, access-N): pending, approved, rejected, expired or used, with the decisions so far.',
    readOnly: true,
    handler: approvalStatusTool as Handler,
  },
  [MCP_TOOLS.waitForApproval]: {
    title: 'Wait for approval',
    description:
      'Wait (with progress notifications) up to timeout_seconds for a pending statement approval; once approved, run that exact statement with its values, once, and return its result.',
    readOnly: false,
    handler: waitForApprovalTool as Handler,
  },
  [MCP_TOOLS.requestAccess]: {
    title: 'Request time-boxed access',
    description:
      'Ask for time-boxed access to a requestable policy on a connection, with a reason; a reviewer decides (see approval_status with the returned access-N id).',
    readOnly: false,
    handler: requestAccessTool as Handler,
  },
};

const definitionCache = new Map<string | undefined, Tool[]>();

/** Tool definitions as tools/list answers them; the JSON schemas come from the zod schemas. */
export function toolDefinitions(pinned?: string): Tool[] {
  let tools = definitionCache.get(pinned);
  if (!tools) {
    tools = buildDefinitions(pinned);
    definitionCache.set(pinned, tools);
  }
  return tools;
}

function buildDefinitions(pinned: string | undefined): Tool[] {
  const inputs = inputSchemas(pinned);
  return (Object.keys(TOOLS) as ToolName[]).map((name) => ({
    name,
    title: TOOLS[name].title,
    description: TOOLS[name].description,
    inputSchema: z.toJSONSchema(inputs[name], { target: 'draft-7', io: 'input' }) as Tool['inputSchema'],
    outputSchema: z.toJSONSchema(outputSchemas[name], {
      target: 'draft-7',
      io: 'output',
    }) as Tool['outputSchema'],
    annotations: {
      readOnlyHint: TOOLS[name].readOnly,
      destructiveHint: !TOOLS[name].readOnly,
      openWorldHint: false,
    },
  }));
}

/** What one MCP session knows of itself. */
export interface SessionState {
  pinned?: string;
  sessions: DatabaseSessions;
  client(): McpClientInfo;
}

export interface ServerDeps extends ToolDeps {
  version: string;
  log: { append(input: AuditRecordInput): Promise<unknown> };
  onError(err: Error): void;
}

/** The identity http.ts verified for the request, carried in the SDK's authInfo. */
export interface RequestAuth {
  identity: Identity;
  source: string;
}

export function createSessionServer(deps: ServerDeps, state: SessionState): Server {
  const server = new Server(
    { name: MCP_SERVER_NAME, title: 'hoop gateway', version: deps.version },
    { capabilities: { tools: {} }, instructions: MCP_INSTRUCTIONS },
  );
  const tools = toolDefinitions(state.pinned);
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const auth = extra.authInfo?.extra as RequestAuth | undefined;
    if (!auth) throw new Error('unauthenticated request'); // http.ts always sets it
    const token = extra._meta?.progressToken;
    const ctx: CallContext = {
      identity: auth.identity,
      source: auth.source,
      signal: extra.signal,
      pinned: state.pinned,
      sessions: state.sessions,
      progress: (progress, total, message) => {
        if (token === undefined) return;
        extra
          .sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress, ...(total ? { total } : {}), message },
          })
          .catch(() => undefined);
      },
    };
    return callTool(deps, state, ctx, request.params.name, request.params.arguments);
  });
  return server;
}

async function callTool(
  deps: ServerDeps,
  state: SessionState,
  ctx: CallContext,
  name: string,
  args: unknown,
): Promise<CallToolResult> {
  const started = Date.now();
  const result = await runTool(deps, state, ctx, name, args);
  try {
    // Every call is a record in the chain; a result that cannot be recorded is not delivered.
    await deps.log.append(
      toolRecord({
        tool: name,
        args,
        identity: ctx.identity,
        source: ctx.source,
        client: state.client(),
        summary: result.summary,
        isError: result.isError,
        durationMs: Date.now() - started,
      }),
    );
  } catch (err) {
    deps.onError(err as Error);
    return {
      content: [
        { type: 'text', text: 'the audit log cannot be written, so the result is withheld (SQLSTATE 58030)' },
      ],
      isError: true,
    };
  }
  const json = result.structured ? JSON.stringify(result.structured) : '';
  const text = result.message ? (json ? `${result.message}\n${json}` : result.message) : json;
  return {
    content: [{ type: 'text', text }],
    ...(result.structured ? { structuredContent: result.structured } : {}),
    ...(result.isError ? { isError: true } : {}),
  };
}

async function runTool(
  deps: ServerDeps,
  state: SessionState,
  ctx: CallContext,
  name: string,
  args: unknown,
): Promise<ToolResult> {
  const fail = (message: string, summary: Partial<CallSummary> = {}): ToolResult => ({
    message,
    isError: true,
    summary: { ...summary, outcome: { status: 'error', ...summary.outcome } },
  });
  // Own tools only: a name such as `__proto__` or `constructor` is no tool (not Object.prototype's).
  const spec = Object.hasOwn(TOOLS, name) ? TOOLS[name as ToolName] : undefined;
  if (!spec) return fail(`no tool "${name}" (tools: ${Object.keys(TOOLS).join(', ')})`);
  const parsed = inputSchemas(state.pinned)[name as ToolName].safeParse(args ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(
      `invalid arguments: ${issue?.path.join('.') || '(arguments)'}: ${issue?.message ?? 'invalid'}`,
      {
        outcome: { status: 'invalid_arguments' },
      },
    );
  }
  try {
    return await spec.handler(deps, ctx, parsed.data as never);
  } catch (err) {
    if (err instanceof ToolError) return fail(err.message, err.summary);
    if (err instanceof HttpError) return fail(err.message, { outcome: { status: err.code } });
    // The database session could not start or ended (upstream down, revoked, shutting down).
    if (err instanceof SessionClosed) return fail(`the gateway session ended: ${err.message}`);
    deps.onError(err as Error);
    return fail('internal error (see the gateway log)');
  }
}
