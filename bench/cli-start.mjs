#!/usr/bin/env node
/**
 * How fast hoopctl starts, against `node -e 0` in the same run (issue 15's targets, on an idle machine):
 *   hoopctl --version                            ≤ 150 ms
 *   hoopctl connections (logged in)              ≤ 400 ms
 *   hoopctl exec prod-db -c "select 1", first row ≤ 600 ms
 * Each is run --runs times (default 15) after one warm-up; the table shows the median and the fastest
 * wall-clock time, the median CPU time (user + system, from /usr/bin/time when present: steadier than
 * wall-clock on a busy machine), and the median minus node -e 0's (what hoopctl itself adds).
 * The person is logged in through the real device flow (dev IdP), tokens in a file (HOOPCTL_TOKEN_STORE=file).
 *
 * Usage (after npm run build): node bench/cli-start.mjs [--runs 15]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { completeDeviceLogin } from '../dist/gateway/dev/device-browser.js';
import { HOOPCTL, startBenchStack } from './lib/stack.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 15);
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

const POLICIES = `policies:
  - name: engineers
    groups: [engineering]
    connections: [prod-db]
    rules:
      - { name: reads, allow: [read, transaction, session] }`;

const stack = await startBenchStack();
const gateway = await stack.startGateway({ policies: POLICIES });
const env = (home) => ({
  ...process.env,
  HOOPCTL_HOME: home,
  HOOPCTL_GATEWAY: stack.gatewayUrl,
  HOOPCTL_TOKEN_STORE: 'file',
  NO_COLOR: '1',
});
const loggedIn = mkdtempSync(join(tmpdir(), 'hoopctl-bench-'));
const fresh = mkdtempSync(join(tmpdir(), 'hoopctl-bench-'));
await login(loggedIn);

/**
 * One timed run: wall-clock ms until `until` matches stdout (or exit), and CPU ms when /usr/bin/time is
 * there (it writes "user system" on the last line of stderr).
 */
function timed(argv, options = {}) {
  return new Promise((resolve, reject) => {
    const command = TIME ? [TIME, '-f', '%U %S', ...argv] : argv;
    const start = process.hrtime.bigint();
    const child = spawn(command[0], command.slice(1), {
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let marked;
    child.stdout.on('data', (c) => {
      out += c.toString('utf8');
      if (options.until && marked === undefined && options.until.test(out)) marked = process.hrtime.bigint();
    });
    child.stderr.on('data', (c) => {
      err += c.toString('utf8');
    });
    child.on('exit', (code) => {
      const end = marked ?? process.hrtime.bigint();
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}: ${out}${err}`));
      const cpu = TIME ? err.trim().split('\n').at(-1).split(' ').map(Number) : undefined;
      resolve({ ms: Number(end - start) / 1e6, cpuMs: cpu ? (cpu[0] + cpu[1]) * 1000 : undefined });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

const cases = [
  { name: 'node -e 0', argv: [process.execPath, '-e', '0'] },
  { name: 'hoopctl --version', argv: [process.execPath, HOOPCTL, '--version'], env: env(fresh), target: 150 },
  {
    name: 'hoopctl --version (logged in: + gateway version)',
    argv: [process.execPath, HOOPCTL, '--version'],
    env: env(loggedIn),
  },
  {
    name: 'hoopctl connections',
    argv: [process.execPath, HOOPCTL, 'connections'],
    env: env(loggedIn),
    target: 400,
  },
  {
    name: 'hoopctl exec -c "select 1": first row',
    argv: [process.execPath, HOOPCTL, 'exec', 'prod-db', '-c', 'select 1 as one'],
    env: env(loggedIn),
    until: /\n1\s*\n/,
    target: 600,
  },
];

const results = [];
for (const c of cases) {
  await timed(c.argv, c); // warm-up: file cache, JIT of nothing (each run is a new process)
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await timed(c.argv, c));
  results.push({
    ...c,
    median: median(runs.map((r) => r.ms)),
    min: Math.min(...runs.map((r) => r.ms)),
    cpu: TIME ? median(runs.map((r) => r.cpuMs)) : undefined,
  });
}

const base = results[0].median;
const baseCpu = results[0].cpu;
const rows = results.map((r) => [
  r.name,
  r.median.toFixed(0),
  r.min.toFixed(0),
  r.cpu === undefined ? '-' : r.cpu.toFixed(0),
  r === results[0] ? '-' : `+${(r.median - base).toFixed(0)}`,
  r.cpu === undefined || r === results[0] ? '-' : `+${(r.cpu - baseCpu).toFixed(0)}`,
  r.target ? `≤ ${r.target}` : '',
  r.target ? (r.median <= r.target ? 'met' : 'over') : '',
]);
const headers = ['command', 'median ms', 'min ms', 'CPU ms', 'vs node -e 0', 'CPU vs node', 'target ms', ''];
const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (r) =>
  r
    .map((v, i) => String(v).padEnd(widths[i]))
    .join('  ')
    .trimEnd();
console.log(
  `\nhoopctl start time, ${RUNS} runs each (${new Date().toISOString()}, load ${(await loadAverage()).join(' ')})\n`,
);
console.log(line(headers));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

await gateway.stop();
await stack.stop();

async function loadAverage() {
  const { loadavg } = await import('node:os');
  return loadavg().map((l) => l.toFixed(2));
}

/** The device flow, finished by a scripted browser as alice (as the tests do). */
async function login(home) {
  const child = spawn(process.execPath, [HOOPCTL, 'login', '--no-browser', '--gateway', stack.gatewayUrl], {
    env: env(home),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let browser;
  child.stdout.on('data', (c) => {
    out += c.toString('utf8');
    const url = /Open this URL in a browser: (\S+)/.exec(out)?.[1];
    const code = /enter the code:\s+([A-Z]{4}-[A-Z]{4})/.exec(out)?.[1];
    if (url && code && !browser) browser = completeDeviceLogin(url, code, 'alice@example.com', 'alice-dev');
  });
  child.stderr.resume();
  const code = await new Promise((r) => child.once('exit', r));
  await browser;
  if (code !== 0) throw new Error(`login failed: ${out}`);
}
