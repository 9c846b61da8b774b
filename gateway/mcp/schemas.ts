/**
 * The tools' input and output schemas (docs/agents.md documents them; keep the two together). Inputs
 * are strict: an argument the gateway does not know is refused, not ignored. Outputs are what
 * `structuredContent` carries; the same objects, serialised, are the text content.
 */
import { z } from 'zod';
import { MCP_TOOLS } from '../../src/shared/mcp.js';

const name = z.string().min(1).max(200);
const sql = z
  .string()
  .min(1, 'must not be empty')
  .max(1024 * 1024, 'must be at most 1 MiB');
const requestId = z.union([
  z.string().regex(/^#?(\d{1,15}|access-\d{1,15})$/, 'must be an approval id such as "42" (or "access-3")'),
  z.number().int().positive(),
]);

/** `connection` is required unless the session is pinned to one (x-hoop-mcp-connection). */
function connectionArg(pinned: string | undefined) {
  const described = name.describe(
    pinned
      ? `connection name (this session is pinned to "${pinned}")`
      : 'connection name (see the connections tool)',
  );
  return pinned ? described.optional() : described;
}

/** Built once per pinned connection: zod compiles a schema on its first use, so each is reused. */
const inputCache = new Map<string | undefined, ReturnType<typeof buildInputSchemas>>();

export function inputSchemas(pinned?: string) {
  let schemas = inputCache.get(pinned);
  if (!schemas) {
    schemas = buildInputSchemas(pinned);
    inputCache.set(pinned, schemas);
  }
  return schemas;
}

function buildInputSchemas(pinned: string | undefined) {
  const connection = connectionArg(pinned);
  return {
    [MCP_TOOLS.connections]: z.strictObject({}),
    [MCP_TOOLS.schema]: z.strictObject({
      connection,
      schema: name.optional().describe('only this schema, e.g. "public"'),
      table: name.optional().describe('only tables of this name'),
    }),
    [MCP_TOOLS.query]: z.strictObject({
      connection,
      sql: sql.describe('one statement, or a script of several run one by one; use $1, $2 ... for params'),
      params: z
        .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
        .max(1000)
        .optional()
        .describe('values bound to $1, $2 ... (one statement only); sent as text'),
      max_rows: z.number().int().min(1).optional().describe('return at most this many rows per statement'),
      approval_id: requestId
        .optional()
        .describe('run the statement this approved request was filed for (the same sql and params)'),
      wait_seconds: z
        .number()
        .int()
        .min(0)
        .max(60)
        .optional()
        .describe('if approval is needed, wait this long for it before answering pending_approval'),
    }),
    [MCP_TOOLS.explain]: z.strictObject({ connection, sql }),
    [MCP_TOOLS.approvalStatus]: z.strictObject({ approval_id: requestId }),
    [MCP_TOOLS.waitForApproval]: z.strictObject({
      approval_id: requestId,
      timeout_seconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .optional()
        .describe('stop waiting after this long (default 50); progress is reported meanwhile'),
      run: z
        .boolean()
        .optional()
        .describe('once approved, run the statement and return its result (default true)'),
    }),
    [MCP_TOOLS.requestAccess]: z.strictObject({
      connection,
      policy: name.describe('a requestable policy (see the connections tool and your administrator)'),
      duration: z.string().regex(/^\d+(s|m|h|d)$/, 'a duration such as 30m, 1h, 8h'),
      reason: z.string().trim().min(1).max(2000),
    }),
  };
}

const column = z.object({ name: z.string(), type: z.string() });

const resultSet = z.object({
  statement: z.string(),
  /** CommandComplete tag; null when the row limit cut the result off. */
  command: z.string().nullable(),
  columns: z.array(column),
  rows: z.array(z.array(z.string().nullable())),
  row_count: z.number().int(),
  truncated: z.boolean(),
});

export const errorInfo = z.object({
  sqlstate: z.string(),
  message: z.string(),
  detail: z.string().optional(),
  hint: z.string().optional(),
  routine: z.string().optional(),
  rule: z.string().optional(),
  policy: z.string().optional(),
  /** The statement of a script that failed. */
  statement: z.string().optional(),
});

const decisionEntry = z.object({
  subject: z.string(),
  name: z.string().optional(),
  decision: z.enum(['approve', 'reject']),
  comment: z.string().optional(),
  time: z.string(),
});

export const approvalInfo = z.object({
  id: z.string(),
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'withdrawn', 'used']),
  connection: z.string(),
  statement: z.string(),
  params: z.array(z.string().nullable()).optional(),
  rule: z.string(),
  policy: z.string(),
  approvers: z.array(z.string()),
  approvals_required: z.number().int(),
  approvals: z.number().int(),
  decisions: z.array(decisionEntry),
  created_at: z.string(),
  expires_at: z.string(),
  decided_at: z.string().optional(),
  used_at: z.string().optional(),
  outcome_reason: z.string().optional(),
});

const accessInfo = z.object({
  id: z.string(),
  status: z.enum(['pending', 'approved', 'rejected', 'expired', 'revoked']),
  connection: z.string(),
  policy: z.string(),
  reason: z.string(),
  duration: z.string(),
  created_at: z.string(),
  expires_at: z.string().optional(),
  active: z.boolean(),
});

export const budgetInfo = z.object({
  rows_per_hour: z.number().int(),
  remaining: z.number().int(),
  refills_at: z.string().optional(),
});

export const queryOutput = z.object({
  status: z.enum(['completed', 'pending_approval', 'denied', 'rejected', 'expired', 'withdrawn', 'error']),
  connection: z.string(),
  /** The gateway session the statements ran in: `hoopctl sessions show <id>`. */
  session: z.string().optional(),
  results: z.array(resultSet),
  truncated: z.boolean(),
  approval: approvalInfo.optional(),
  error: errorInfo.optional(),
  notices: z.array(z.string()).optional(),
  budget: budgetInfo.optional(),
});

const agentInfo = z.object({
  name: z.string(),
  read_only: z.boolean(),
  statement_timeout_ms: z.number().int(),
  rows_per_hour: z.number().int(),
  mcp_only: z.boolean(),
});

const ruleView = z.object({
  name: z.string(),
  action: z.enum(['allow', 'deny', 'approve']),
  classes: z.array(z.string()),
  relations: z.array(z.string()).optional(),
  functions: z.array(z.string()).optional(),
  flags: z.array(z.string()).optional(),
  approvers: z.array(z.string()).optional(),
  timeout: z.string().optional(),
});

const explainStatement = z.object({
  text: z.string(),
  class: z.string(),
  kind: z.string(),
  relations: z.array(z.string()),
  functions: z.array(z.string()),
  decision: z.enum(['allow', 'deny', 'approve']),
  rule: z.string(),
  policy: z.string().nullable(),
  reason: z.string(),
});

export const outputSchemas = {
  [MCP_TOOLS.connections]: z.object({
    connections: z.array(
      z.object({
        name: z.string(),
        description: z.string().optional(),
        database: z.string(),
        policies: z.array(
          z.object({
            name: z.string(),
            rules: z.array(ruleView),
            masking: z.array(
              z.object({
                columns: z.array(z.string()).optional(),
                tags: z.array(z.string()).optional(),
                mask: z.string(),
              }),
            ),
          }),
        ),
        /** Requestable policies the identity could ask for with request_access (not granted now). */
        requestable: z.array(z.object({ name: z.string(), max_duration: z.string() })),
      }),
    ),
    /** The agent guardrails that apply to this identity, if it is matched as an agent. */
    agent: agentInfo.optional(),
    /** What one query call returns at most. */
    limits: z.object({ max_rows: z.number().int(), max_bytes: z.number().int() }),
    budget: budgetInfo.optional(),
  }),
  [MCP_TOOLS.schema]: z.object({
    connection: z.string(),
    tables: z.array(
      z.object({
        schema: z.string(),
        name: z.string(),
        kind: z.string(),
        columns: z.array(
          z.object({
            name: z.string(),
            type: z.string(),
            nullable: z.boolean(),
            masked: z.boolean(),
            mask: z.string().optional(),
            rule: z.string().optional(),
          }),
        ),
      }),
    ),
    truncated: z.boolean(),
    /** Masks applied to values that look like these, wherever they come from. */
    value_detectors: z.array(z.object({ tag: z.string(), mask: z.string() })),
  }),
  [MCP_TOOLS.query]: queryOutput,
  [MCP_TOOLS.explain]: z.object({
    connection: z.string(),
    decision: z.enum(['allow', 'deny', 'approve']),
    rule: z.string(),
    policy: z.string().nullable(),
    reason: z.string(),
    /** What it would take: "approval by 1 approver from db-reviewers", "a policy that allows ...". */
    needs: z.string().optional(),
    approvers: z.array(z.string()).optional(),
    approvals_required: z.number().int().optional(),
    statements: z.array(explainStatement),
    parse_error: z.string().optional(),
  }),
  [MCP_TOOLS.approvalStatus]: z.object({
    approval: approvalInfo.optional(),
    access_request: accessInfo.optional(),
  }),
  [MCP_TOOLS.waitForApproval]: z.object({
    /** The request's status when the wait ended ("used" once the statement ran). */
    status: approvalInfo.shape.status,
    approval: approvalInfo,
    waited_seconds: z.number(),
    /** The statement's result, when it ran. */
    query: queryOutput.optional(),
  }),
  [MCP_TOOLS.requestAccess]: z.object({ request: accessInfo }),
};

export type ToolName = (typeof MCP_TOOLS)[keyof typeof MCP_TOOLS];
export type QueryOutput = z.infer<typeof queryOutput>;
export type ApprovalInfo = z.infer<typeof approvalInfo>;
export type ErrorInfo = z.infer<typeof errorInfo>;
export type BudgetInfo = z.infer<typeof budgetInfo>;
export type ToolOutput<T extends ToolName> = z.infer<(typeof outputSchemas)[T]>;
export type ToolInput<T extends ToolName> = z.infer<ReturnType<typeof buildInputSchemas>[T]>;
