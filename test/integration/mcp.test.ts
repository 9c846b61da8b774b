/**
 * AI agents through MCP, end to end with real parts: the MCP SDK's own client over Streamable HTTP
 * (authorizing itself with the SDK's client-credentials provider, from the gateway's 401 and protected
 * resource metadata) and over stdio (spawning `hoopctl mcp`), against the real gateway, IdP and
 * PostgreSQL. A reviewer approves with `hoopctl approve`; an auditor reads the records and verifies
 * the chain with `hoopctl sessions` and `hoopctl audit verify`.
 */

import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/shared/audit.js';
import { fetchTrustingCa } from '../../src/shared/fetch-with-ca.js';
import { clientCredentialsTokens } from '../harness/idp.js';
import { HOOPCTL, type Stack, startStack } from '../harness/stack.js';

const POLICIES = `
policies:
  - name: agents
    groups: [ai-agents]
    connections: [prod-db]
    rules:
      - { name: agent-reads, allow: [read, transaction, session] }
      - { name: agent-changes-need-review, approve: [write], approvers: [db-reviewers], timeout: 30m }
      - { name: agent-no-ddl, deny: [ddl, admin, dcl, copy-out, procedural] }
    masking:
      - { columns: [public.customers.ssn, public.customers.card_pan], mask: redact }
      - { columns: [public.customers.email], mask: email-domain }
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write, ddl], approvers: [db-reviewers], timeout: 30m }
      - { name: no-admin, deny: [admin, dcl, copy-out, procedural] }
    masking:
      - { columns: [public.customers.ssn], mask: partial }
  - name: agents-incident
    groups: [ai-agents]
    connections: [prod-db]
    requestable: true
    max_duration: 1h
    rules:
      - { name: incident-reads, allow: [read] }
  - name: ci-reads
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: ci-reads, allow: [read] }
  - name: reviewers
    groups: [db-reviewers]
    review: true
  - name: auditors
    groups: [audit]
    audit: true
`;

const AGENTS = `
agents:
  - { name: ai-agents, groups: [ai-agents], statement_timeout: 5s, max_rows: 20, rows_per_hour: 1000 }
  - { name: metered, subjects: [ci-bot], rows_per_hour: 3, mcp_only: false }
`;

/** Clear values of the seeded customers that masking must keep from every agent. */
const CLEAR = ['000-12-3456', '000-98-7654', '4111111111111111', '5555555555554444', 'ada@example.com'];

const TOOL_NAMES = [
  'approval_status',
  'connections',
  'explain',
  'query',
  'request_access',
  'schema',
  'wait_for_approval',
];

interface QueryResult {
  status: string;
  session?: string;
  results: {
    command: string | null;
    columns: { name: string; type: string }[];
    rows: (string | null)[][];
    row_count: number;
    truncated: boolean;
  }[];
  truncated: boolean;
  approval?: { id: string; status: string; rule: string; approvers: string[] };
  error?: { sqlstate: string; rule?: string; message: string; routine?: string };
}

let stack: Stack;
let issuer: string;
let reviewer: string;
let auditor: string;
/** Every tool result text the agents received: none may carry a clear value. */
const seen: string[] = [];

const structured = <T>(r: CallToolResult) => {
  seen.push(JSON.stringify(r));
  return r.structuredContent as T;
};

function httpClient(
  name = 'mcp-test-agent',
  clientId = 'agent-bot',
): { client: Client; transport: StreamableHTTPClientTransport } {
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', stack.gatewayUrl), {
    fetch: fetchTrustingCa(stack.certs!.caCert),
    // The SDK authorizes itself: 401 -> protected resource metadata -> the IdP -> client credentials.
    authProvider: new ClientCredentialsProvider({
      clientId,
      clientSecret: `${clientId}-secret`,
      expectedIssuer: issuer,
    }),
  });
  return { client: new Client({ name, version: '1.2.3' }), transport };
}

async function auditRecords(session: string): Promise<AuditRecord[]> {
  const shown = await stack.cli(auditor, ['sessions', 'show', session, '--json']);
  expect(shown.code, shown.stderr).toBe(0);
  return (JSON.parse(shown.stdout) as { records: AuditRecord[] }).records;
}

/** Approve once the agent is visibly waiting (a progress notification came), as a reviewer would. */
function approveWhenWaiting(id: string): { onprogress: (p: Progress) => void; approved: Promise<void> } {
  let started = false;
  let resolveApproved: () => void = () => {};
  let rejectApproved: (err: Error) => void = () => {};
  const approved = new Promise<void>((resolve, reject) => {
    resolveApproved = resolve;
    rejectApproved = reject;
  });
  return {
    approved,
    onprogress: () => {
      if (started) return;
      started = true;
      stack
        .cli(reviewer, ['approve', id, '--comment', 'ok for the agent'])
        .then(
          (r) => (r.code === 0 ? resolveApproved() : rejectApproved(new Error(r.stderr))),
          rejectApproved,
        );
    },
  };
}

beforeAll(async () => {
  stack = await startStack({ policies: POLICIES, extraConfig: AGENTS });
  const discovery = (await (
    await fetchTrustingCa(stack.certs!.caCert)(`${stack.gatewayUrl}/.well-known/hoop-gateway`)
  ).json()) as {
    issuer: string;
  };
  issuer = discovery.issuer;
  reviewer = await stack.login('rita@example.com');
  auditor = await stack.login('aubrey@example.com');
});

afterAll(async () => {
  await stack?.stop();
});

describe('the gateway as a protected resource', () => {
  it('answers an unauthenticated request with 401 and a pointer to its metadata', async () => {
    const fetchCa = fetchTrustingCa(stack.certs!.caCert);
    const response = await fetchCa(`${stack.gatewayUrl}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    const pointer = `${stack.gatewayUrl}/.well-known/oauth-protected-resource`;
    expect(challenge).toBe(`Bearer resource_metadata="${pointer}"`);

    const metadata = (await (await fetchCa(pointer)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      resource: stack.gatewayUrl,
      authorization_servers: [issuer],
      bearer_methods_supported: ['header'],
    });

    const forged = await fetchCa(`${stack.gatewayUrl}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(forged.status).toBe(401);
    expect(forged.headers.get('www-authenticate')).toMatch(
      new RegExp(`^Bearer error="invalid_token", error_description="[^"]+", resource_metadata="${pointer}"$`),
    );
  });
});

describe('an agent over Streamable HTTP (client credentials)', () => {
  let client: Client;
  let transport: StreamableHTTPClientTransport;
  let session = '';

  beforeAll(async () => {
    const c = httpClient();
    client = c.client;
    transport = c.transport;
    await client.connect(transport);
  });
  afterAll(async () => {
    await client?.close();
  });

  it("answers someone else's session id, or a foreign origin, as if there were none", async () => {
    const sessionId = transport.sessionId!;
    expect(sessionId).toBeTruthy();
    const ci = await clientCredentialsTokens(issuer, stack.gatewayUrl, 'ci-bot', 'ci-bot-secret');
    const fetchCa = fetchTrustingCa(stack.certs!.caCert);
    const post = (headers: Record<string, string>) =>
      fetchCa(`${stack.gatewayUrl}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-06-18',
          ...headers,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
    const hijack = await post({ authorization: `Bearer ${ci.access_token}`, 'mcp-session-id': sessionId });
    expect(hijack.status).toBe(404);
    const foreign = await post({
      authorization: `Bearer ${ci.access_token}`,
      origin: 'https://evil.example',
    });
    expect(foreign.status).toBe(403);
    const metadata = await fetchCa(`${stack.gatewayUrl}/.well-known/oauth-protected-resource/mcp`);
    expect(((await metadata.json()) as { resource: string }).resource).toBe(stack.gatewayUrl);
  });

  it('lists the tools with their schemas', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    const query = tools.find((t) => t.name === 'query')!;
    expect(query.inputSchema.required).toEqual(['connection', 'sql']);
    expect(query.outputSchema?.properties).toHaveProperty('truncated');
  });

  it('shows what the agent may reach, with its guardrails', async () => {
    const out = structured<{
      connections: { name: string }[];
      agent: Record<string, unknown>;
      limits: Record<string, number>;
    }>((await client.callTool({ name: 'connections', arguments: {} })) as CallToolResult);
    expect(out.connections.map((c) => c.name)).toEqual(['prod-db']);
    expect(out.agent).toMatchObject({ name: 'ai-agents', read_only: true, statement_timeout_ms: 5000 });
    expect(out.limits.max_rows).toBe(20);
  });

  it('reads the schema with masked columns flagged', async () => {
    const out = structured<{
      tables: { name: string; columns: { name: string; type: string; masked: boolean; mask?: string }[] }[];
    }>(
      (await client.callTool({
        name: 'schema',
        arguments: { connection: 'prod-db', schema: 'public' },
      })) as CallToolResult,
    );
    const customers = out.tables.find((t) => t.name === 'customers')!;
    const column = (name: string) => customers.columns.find((c) => c.name === name)!;
    expect(column('ssn')).toMatchObject({ type: 'text', masked: true, mask: 'redact' });
    expect(column('email')).toMatchObject({ masked: true, mask: 'email-domain' });
    expect(column('name')).toMatchObject({ masked: false });
    expect(out.tables.map((t) => t.name)).toContain('orders');
  });

  it('runs a read with bound parameters, masked', async () => {
    const result = (await client.callTool({
      name: 'query',
      arguments: {
        connection: 'prod-db',
        sql: 'select id, name, ssn, email from customers where id <= $1 order by id',
        params: [2],
      },
    })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    const out = structured<QueryResult>(result);
    expect(out.status).toBe('completed');
    session = out.session!;
    const [set] = out.results;
    expect(set!.columns).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'name', type: 'text' },
      { name: 'ssn', type: 'text' },
      { name: 'email', type: 'text' },
    ]);
    expect(set!.rows.map((r) => r[1])).toEqual(['Ada Example', 'Brian Sample']);
    expect(set!.rows[0]![2]).not.toBe('000-12-3456');
    expect(set!.rows[0]![3]).toMatch(/@example\.com$/);
    expect(set!.rows[0]![3]).not.toBe('ada@example.com');
  });

  it('cuts a large result at the agent limit, saying so', async () => {
    const out = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql: 'select g from generate_series(1, 500) as g' },
      })) as CallToolResult,
    );
    expect(out.results[0]).toMatchObject({ row_count: 20, truncated: true, command: null });
    expect(out.truncated).toBe(true);
  });

  it('hits a denial and gets the rule and SQLSTATE as a tool error', async () => {
    const result = (await client.callTool({
      name: 'query',
      arguments: { connection: 'prod-db', sql: 'create table agent_scratch (a int)' },
    })) as CallToolResult;
    expect(result.isError).toBe(true);
    const out = structured<QueryResult>(result);
    expect(out.status).toBe('denied');
    expect(out.error).toMatchObject({
      sqlstate: '42501',
      rule: 'agent-no-ddl',
      routine: 'hoop_policy_denied',
    });

    // The guardrails: an agent may not lift the statement timeout the gateway set.
    const lift = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql: 'set statement_timeout = 0' },
      })) as CallToolResult,
    );
    expect(lift.error).toMatchObject({ sqlstate: '42501', rule: 'agent-settings' });
    const timeout = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql: 'show statement_timeout' },
      })) as CallToolResult,
    );
    expect(timeout.results[0]!.rows).toEqual([['5s']]);
  });

  it('explains a decision without running it', async () => {
    const out = structured<{ decision: string; rule: string; needs: string }>(
      (await client.callTool({
        name: 'explain',
        arguments: { connection: 'prod-db', sql: "update customers set country = 'NL' where id = 5" },
      })) as CallToolResult,
    );
    expect(out).toMatchObject({ decision: 'approve', rule: 'agent-changes-need-review' });
    expect(out.needs).toMatch(/approval by 1 approver from db-reviewers/);
  });

  it('starts a write that needs approval and completes it once a reviewer approves', async () => {
    const sql = 'update customers set country = $1 where id = $2';
    const pending = (await client.callTool({
      name: 'query',
      arguments: { connection: 'prod-db', sql, params: ['NL', 5] },
    })) as CallToolResult;
    expect(pending.isError).toBeFalsy();
    const out = structured<QueryResult>(pending);
    expect(out.status).toBe('pending_approval');
    expect(out.approval).toMatchObject({
      status: 'pending',
      rule: 'agent-changes-need-review',
      approvers: ['db-reviewers'],
    });
    const id = out.approval!.id;
    expect(stack.pg.psql('select country from customers where id = 5', 'shop').trim()).toBe('DE');

    // The approval is bound to the exact statement and values: other values do not run under it.
    const other = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql, params: ['FR', 5], approval_id: id },
      })) as CallToolResult,
    );
    expect(other.status).toBe('denied');

    const reviewer = approveWhenWaiting(id);
    const waited = (await client.callTool(
      { name: 'wait_for_approval', arguments: { approval_id: id, timeout_seconds: 120 } },
      undefined,
      { onprogress: reviewer.onprogress, resetTimeoutOnProgress: true, timeout: 180_000 },
    )) as CallToolResult;
    await reviewer.approved;
    expect(waited.isError, JSON.stringify(waited)).toBeFalsy();
    const done = structured<{ status: string; query: QueryResult }>(waited);
    expect(done.status).toBe('used');
    expect(done.query.status).toBe('completed');
    expect(done.query.results[0]!.command).toBe('UPDATE 1');
    expect(stack.pg.psql('select country from customers where id = 5', 'shop').trim()).toBe('NL');

    // Used once: the same approval runs nothing again.
    const again = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql, params: ['NL', 5], approval_id: id },
      })) as CallToolResult,
    );
    expect(again.status).toBe('denied');
    expect(again.error?.message).toMatch(/already been used/);
  });

  it('records the session as an MCP client, every tool call, and never a clear value', async () => {
    const records = await auditRecords(session);
    const started = records.find((r) => r.type === 'session.started')!;
    expect(started.data).toMatchObject({
      client: 'mcp',
      mcp: { name: 'mcp-test-agent', version: '1.2.3', transport: 'http' },
    });
    const tools = records.filter((r) => r.type === 'mcp.tool');
    expect(tools.map((r) => r.data.tool)).toEqual(expect.arrayContaining(['schema', 'query']));
    const denied = tools.find((r) => (r.data.outcome as { status?: string }).status === 'denied')!;
    expect(denied.data).toMatchObject({ decision: 'deny', rule: 'agent-no-ddl', error: true });
    const bound = tools.find((r) => (r.data.arguments as { params?: string }).params)!;
    expect(bound.data.arguments).toMatchObject({ params: '[1 value(s) redacted]' });
    expect(
      records.some((r) => r.type === 'statement.result' && JSON.stringify(r.data).includes('Ada Example')),
    ).toBe(true);

    const exported = await stack.cli(auditor, ['sessions', 'export', '--since', '1h', '--format', 'jsonl']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain('"mcp.tool"');
    for (const value of CLEAR) {
      expect(exported.stdout).not.toContain(value);
      expect(seen.join('\n')).not.toContain(value);
    }
  });

  it('files a time-boxed access request', async () => {
    const out = structured<{ request: { id: string; status: string; policy: string } }>(
      (await client.callTool({
        name: 'request_access',
        arguments: {
          connection: 'prod-db',
          policy: 'agents-incident',
          duration: '30m',
          reason: 'incident 7',
        },
      })) as CallToolResult,
    );
    expect(out.request).toMatchObject({ status: 'pending', policy: 'agents-incident' });
    const status = structured<{ access_request: { status: string } }>(
      (await client.callTool({
        name: 'approval_status',
        arguments: { approval_id: out.request.id },
      })) as CallToolResult,
    );
    expect(status.access_request.status).toBe('pending');
  });

  it('stops an agent at its hourly row budget', async () => {
    const metered = httpClient('metered-agent', 'ci-bot');
    await metered.client.connect(metered.transport);
    try {
      const sql = 'select g from generate_series(1, 10) as g';
      const first = structured<QueryResult & { budget: { remaining: number } }>(
        (await metered.client.callTool({
          name: 'query',
          arguments: { connection: 'prod-db', sql },
        })) as CallToolResult,
      );
      expect(first.results[0]).toMatchObject({ row_count: 3, truncated: true });
      expect(first.budget.remaining).toBe(0);
      const second = (await metered.client.callTool({
        name: 'query',
        arguments: { connection: 'prod-db', sql },
      })) as CallToolResult;
      expect(second.isError).toBe(true);
      expect((second.content[0] as { text: string }).text).toMatch(
        /agent profile "metered" has used its 3 rows this hour/,
      );
    } finally {
      await metered.client.close();
    }
  });

  it('keeps agents with mcp_only out of tunnels', async () => {
    const exec = await stack.cli(auditor, ['exec', 'prod-db', '-c', 'select 1'], {
      env: { HOOPCTL_CLIENT_ID: 'agent-bot', HOOPCTL_CLIENT_SECRET: 'agent-bot-secret' },
    });
    expect(exec.code).toBe(4);
    expect(exec.stderr).toMatch(/agent profile "ai-agents" reaches databases only through MCP/);
  });
});

describe("a person's agent host over stdio (hoopctl mcp)", () => {
  let client: Client;
  let alice: string;

  beforeAll(async () => {
    alice = await stack.login('alice@example.com');
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [HOOPCTL, 'mcp', '--connection', 'prod-db'],
      env: {
        ...(process.env as Record<string, string>),
        HOOPCTL_HOME: alice,
        HOOPCTL_GATEWAY: stack.gatewayUrl,
        HOOPCTL_TOKEN_STORE: 'file',
        HOOPCTL_CA_FILE: stack.certs!.caCert,
        NO_COLOR: '1',
      },
      stderr: 'pipe',
    });
    client = new Client({ name: 'stdio-host', version: '9.9' });
    await client.connect(transport);
  });
  afterAll(async () => {
    await client?.close();
  });

  it('lists the same tools, with the connection pinned', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES);
    expect(tools.find((t) => t.name === 'query')!.inputSchema.required).toEqual(['sql']);
  });

  it('reads masked, is denied with the rule, and runs an approved write', async () => {
    const read = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { sql: 'select ssn from customers where id = 1' },
      })) as CallToolResult,
    );
    expect(read.status).toBe('completed');
    expect(read.results[0]!.rows[0]![0]).toMatch(/3456$/);
    expect(read.results[0]!.rows[0]![0]).not.toBe('000-12-3456');

    const denied = (await client.callTool({
      name: 'query',
      arguments: { sql: 'vacuum customers' },
    })) as CallToolResult;
    expect(denied.isError).toBe(true);
    expect(structured<QueryResult>(denied).error).toMatchObject({ rule: 'no-admin', sqlstate: '42501' });

    const other = (await client.callTool({
      name: 'query',
      arguments: { connection: 'other-db', sql: 'select 1' },
    })) as CallToolResult;
    expect(other.isError).toBe(true);

    const pending = structured<QueryResult>(
      (await client.callTool({
        name: 'query',
        arguments: { sql: 'update orders set total_cents = 1 where id = 1' },
      })) as CallToolResult,
    );
    expect(pending.status).toBe('pending_approval');
    const id = pending.approval!.id;
    const status = structured<{ approval: { status: string } }>(
      (await client.callTool({ name: 'approval_status', arguments: { approval_id: id } })) as CallToolResult,
    );
    expect(status.approval.status).toBe('pending');

    const reviewer = approveWhenWaiting(id);
    const waited = (await client.callTool(
      { name: 'wait_for_approval', arguments: { approval_id: id, timeout_seconds: 120 } },
      undefined,
      { onprogress: reviewer.onprogress, resetTimeoutOnProgress: true, timeout: 180_000 },
    )) as CallToolResult;
    await reviewer.approved;
    const done = structured<{ status: string; query: QueryResult }>(waited);
    expect(done.query.results[0]!.command).toBe('UPDATE 1');

    const records = await auditRecords(done.query.session!);
    expect(records.find((r) => r.type === 'session.started')!.data).toMatchObject({
      mcp: { name: 'stdio-host', version: '9.9', transport: 'stdio' },
    });
    expect(records.find((r) => r.type === 'statement')!.data).toMatchObject({ approval_id: Number(id) });
  });

  it('verifies the chain afterwards', async () => {
    const verify = await stack.cli(auditor, ['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    for (const value of CLEAR) expect(seen.join('\n')).not.toContain(value);
  });
});
