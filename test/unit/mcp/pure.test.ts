/** The MCP server's pure parts: the protected resource metadata, tool-call records, the row budget. */
import { describe, expect, it } from 'vitest';
import { RowBudget } from '../../../gateway/mcp/budget.js';
import { duplexPair } from '../../../gateway/mcp/duplex.js';
import { bearerChallenge, protectedResourceMetadata } from '../../../gateway/mcp/metadata.js';
import { redactArguments, toolRecord } from '../../../gateway/mcp/record.js';
import { toolDefinitions } from '../../../gateway/mcp/server.js';
import { parseConfig } from '../../../src/shared/config/load.js';

const config = parseConfig(
  `
listen: { insecure_loopback: true }
identity:
  issuers:
    - { issuer: https://ci.example.com, audience: https://gw.example.com, kind: workload }
    - { issuer: https://idp.example.com, audience: https://gw.example.com, scopes: [openid, gateway] }
`,
  'test.yaml',
);

describe('protected resource metadata (RFC 9728)', () => {
  it('names the gateway as the resource and its issuers, interactive ones first', () => {
    expect(protectedResourceMetadata(config, 'https://gw.example.com')).toEqual({
      resource: 'https://gw.example.com',
      authorization_servers: ['https://idp.example.com', 'https://ci.example.com'],
      bearer_methods_supported: ['header'],
      scopes_supported: ['openid', 'gateway'],
      resource_name: 'hoop gateway',
    });
  });

  it('challenges with a pointer to it, and says why a token was refused', () => {
    expect(bearerChallenge('https://gw.example.com')).toBe(
      'Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"',
    );
    expect(
      bearerChallenge('https://gw.example.com', { code: 'invalid_token', description: 'token "expired"\n' }),
    ).toBe(
      `Bearer error="invalid_token", error_description="token 'expired' ", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"`,
    );
  });
});

describe('mcp.tool records', () => {
  it('never keep bound values or secrets, and cut long text', () => {
    expect(
      redactArguments({
        connection: 'prod-db',
        sql: 'select $1',
        params: ['s3cret', 2],
        api_token: 'abc',
        nested: { a: 1 },
        long: 'x'.repeat(20_000),
      }),
    ).toMatchObject({
      connection: 'prod-db',
      sql: 'select $1',
      params: '[2 value(s) redacted]',
      api_token: '[redacted]',
      nested: '[object]',
      long: expect.stringMatching(/^x{16384}…$/),
    });
    expect(redactArguments(undefined)).toEqual({});
    expect(redactArguments(['a'])).toBe('[not an object]');
  });

  it('carry the tool, decision, outcome and the MCP client', () => {
    const record = toolRecord({
      tool: 'query',
      args: { connection: 'prod-db', sql: 'drop table t' },
      identity: { issuer: 'i', subject: 'agent', groups: [], kind: 'service' },
      source: '127.0.0.1:1',
      client: { name: 'claude', version: '1', session: 's-1', transport: 'stdio' },
      summary: {
        connection: 'prod-db',
        session: 'g-1',
        decision: 'deny',
        rule: 'no-ddl',
        outcome: { status: 'denied' },
      },
      isError: true,
      durationMs: 3,
    });
    expect(record).toMatchObject({
      type: 'mcp.tool',
      connection: 'prod-db',
      session: 'g-1',
      data: {
        tool: 'query',
        decision: 'deny',
        rule: 'no-ddl',
        error: true,
        outcome: { status: 'denied' },
        mcp: { session: 's-1', client: 'claude', version: '1', transport: 'stdio' },
      },
    });
  });
});

describe('the row budget', () => {
  it('counts rows over a sliding hour', () => {
    let now = 0;
    const budget = new RowBudget(() => now);
    expect(budget.remaining('a', 0)).toBe(Number.POSITIVE_INFINITY);
    budget.spend('a', 70);
    now = 30 * 60_000;
    budget.spend('a', 20);
    expect(budget.remaining('a', 100)).toBe(10);
    expect(budget.remaining('b', 100)).toBe(100);
    expect(budget.refillsAt('a')?.getTime()).toBe(3_600_000);
    now = 3_600_001;
    expect(budget.remaining('a', 100)).toBe(80);
  });
});

describe('tool definitions', () => {
  it('have stable names and closed JSON schemas; a pinned session needs no connection', () => {
    const tools = toolDefinitions();
    expect(tools.map((t) => t.name)).toEqual([
      'connections',
      'schema',
      'query',
      'explain',
      'approval_status',
      'wait_for_approval',
      'request_access',
    ]);
    const query = tools.find((t) => t.name === 'query')!;
    expect(query.inputSchema).toMatchObject({
      type: 'object',
      required: ['connection', 'sql'],
      additionalProperties: false,
    });
    expect(query.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(toolDefinitions('prod-db').find((t) => t.name === 'query')!.inputSchema.required).toEqual(['sql']);
  });
});

describe('the in-memory stream pair', () => {
  it('carries bytes both ways with backpressure, and ends the other side', async () => {
    const [a, b] = duplexPair();
    const got: Buffer[] = [];
    b.on('data', (chunk: Buffer) => got.push(chunk));
    const ended = new Promise((r) => b.once('end', r));
    const big = Buffer.alloc(1 << 20, 7);
    a.write(big);
    a.end(Buffer.from('x'));
    await ended;
    expect(Buffer.concat(got).length).toBe(big.length + 1);
    const closed = new Promise((r) => a.once('close', r));
    b.destroy();
    await closed;
  });
});
