#!/usr/bin/env node
// Issue 18's figures: one agent session through MCP, and the same statement through the other doors.
// The MCP SDK's own client over Streamable HTTP (client credentials) runs a typical session —
// connections, schema, explain, then `query` N times — and `hoopctl mcp` (stdio) runs the same query
// N times; `hoopctl exec -c` runs it as separate invocations (process start, token, tunnel, one
// statement), node-postgres runs it through a `hoopctl connect` tunnel and directly, for scale.
// Reports the tool calls, wall-clock latency per query (median, p90) and the gateway's CPU time per
// query (steadier than wall-clock on a shared machine). Prints figures, asserts nothing.
//
//   npm run build && node bench/mcp.mjs [queries=40] [execs=5]
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { HOOPCTL, startBenchStack } from './lib/stack.mjs';

const QUERIES = Number(process.argv[2] ?? 40);
const EXECS = Number(process.argv[3] ?? 5);
const SQL = 'select id, name, ssn, country from customers order by id';

const POLICIES = `
policies:
  - name: ci-read
    groups: [ci-deploy]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }
      - { name: changes-need-review, approve: [write], approvers: [db-reviewers] }
    masking:
      - { columns: [public.customers.ssn], mask: partial }
`;

const ms = (ns) => Number(ns) / 1e6;
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p90: at(0.9), n: s.length };
};

/** The gateway's user+system CPU time in ms (from /proc; clock ticks of 10 ms). */
function cpuOf(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function pidOf(configFile) {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .find((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(configFile);
      } catch {
        return false;
      }
    });
}

/** Time `n` runs of `once` (awaited in turn); returns per-run ms and the gateway CPU ms per run. */
async function measure(pid, n, once) {
  const times = [];
  const cpu0 = cpuOf(pid);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await once();
    times.push(ms(process.hrtime.bigint() - t0));
  }
  return { ...stats(times), cpuPerRun: (cpuOf(pid) - cpu0) / n };
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${args.join(' ')}: ${code} ${err}`)),
    );
  });
}

const stack = await startBenchStack();
const gw = await stack.startGateway({ policies: POLICIES });
const pid = pidOf(gw.configFile);
const rows = [];
try {
  const discovery = await (await fetch(`${stack.gatewayUrl}/.well-known/hoop-gateway`)).json();
  const env = {
    ...process.env,
    HOOPCTL_HOME: `${stack.dir}/home`,
    HOOPCTL_GATEWAY: stack.gatewayUrl,
    HOOPCTL_TOKEN_STORE: 'file',
    HOOPCTL_CLIENT_ID: 'ci-bot',
    HOOPCTL_CLIENT_SECRET: 'ci-bot-secret',
    NO_COLOR: '1',
  };

  // 1. One agent session over Streamable HTTP, as an agent would run it.
  const http = new Client({ name: 'bench-agent', version: '1' });
  const t0 = process.hrtime.bigint();
  await http.connect(
    new StreamableHTTPClientTransport(new URL('/mcp', stack.gatewayUrl), {
      authProvider: new ClientCredentialsProvider({
        clientId: 'ci-bot',
        clientSecret: 'ci-bot-secret',
        expectedIssuer: discovery.issuer,
      }),
    }),
  );
  const connectMs = ms(process.hrtime.bigint() - t0);
  let calls = 0;
  const call = async (name, args) => {
    calls++;
    const r = await http.callTool({ name, arguments: args });
    if (r.isError) throw new Error(`${name}: ${r.content[0]?.text}`);
    return r.structuredContent;
  };
  await http.listTools();
  const setup = await measure(pid, 1, async () => {
    await call('connections', {});
    await call('schema', { connection: 'prod-db', schema: 'public' });
    await call('explain', { connection: 'prod-db', sql: SQL });
  });
  await call('query', { connection: 'prod-db', sql: SQL }); // opens the database session
  const httpQuery = await measure(pid, QUERIES, () => call('query', { connection: 'prod-db', sql: SQL }));
  await http.close();
  rows.push(['MCP query (Streamable HTTP, warm session)', httpQuery]);

  // 2. The same through hoopctl mcp (stdio bridge -> /mcp).
  const stdio = new Client({ name: 'bench-host', version: '1' });
  await stdio.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [HOOPCTL, 'mcp', '--connection', 'prod-db'],
      env,
      stderr: 'ignore',
    }),
  );
  await stdio.callTool({ name: 'query', arguments: { sql: SQL } });
  rows.push([
    'MCP query (hoopctl mcp, stdio, warm)',
    await measure(pid, QUERIES, () => stdio.callTool({ name: 'query', arguments: { sql: SQL } })),
  ]);
  await stdio.close();

  // 3. hoopctl exec: each invocation starts a process, gets a token, opens a tunnel, runs one statement.
  rows.push([
    'hoopctl exec -c (one invocation each)',
    await measure(pid, EXECS, () => run(process.execPath, [HOOPCTL, 'exec', 'prod-db', '-c', SQL], env)),
  ]);

  // 4. For scale: node-postgres through a hoopctl connect tunnel (warm), and directly.
  const tunnel = await stack.connect();
  const viaTunnel = new pg.Client({ connectionString: tunnel.url });
  await viaTunnel.connect();
  rows.push([
    'node-postgres via hoopctl connect (warm)',
    await measure(pid, QUERIES, () => viaTunnel.query(SQL)),
  ]);
  await viaTunnel.end();
  tunnel.stop();
  const direct = new pg.Client({ connectionString: stack.directUrl });
  await direct.connect();
  rows.push(['node-postgres direct (no gateway)', await measure(pid, QUERIES, () => direct.query(SQL))]);
  await direct.end();

  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(
    `\nOne agent session (Streamable HTTP): connect+initialize ${connectMs.toFixed(0)} ms (incl. 401 -> metadata -> token),`,
  );
  console.log(
    `tool calls: ${calls} (connections, schema, explain, ${calls - 3} x query); setup calls took ${setup.median.toFixed(0)} ms, gateway CPU ${setup.cpuPerRun} ms.`,
  );
  console.log(`Statement: ${SQL}  (5 rows, one masked column). Load average at the end: ${load}\n`);
  console.log('| path | runs | median ms | p90 ms | gateway CPU ms per query |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [name, r] of rows) {
    console.log(
      `| ${name} | ${r.n} | ${r.median.toFixed(1)} | ${r.p90.toFixed(1)} | ${r.cpuPerRun.toFixed(2)} |`,
    );
  }
} finally {
  await gw.stop();
  await stack.stop();
}
