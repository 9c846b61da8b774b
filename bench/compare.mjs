#!/usr/bin/env node
/**
 * Before/after on this noisy machine: builds a git ref into a temporary worktree and alternates it with
 * the working tree, each time starting a fresh stack (bench/lib.mjs of that build), warming up, then
 * measuring. Prints every run and the medians, so a change is judged against runs taken minutes apart.
 *
 *   node bench/compare.mjs <before-ref> [<after-ref>] [--path gateway|full] [--what result|pgbench]
 *        [--mb 500] [--mode prepared] [--clients 8] [--seconds 5] [--runs 4] [--rounds 2]
 *
 * result: a --mb MB result streamed through the path (MB/s, the gateway's RSS before it and its peak
 * during it, CPU seconds of the gateway and of hoopctl connect); pgbench: pgbench -S -M --mode for
 * --seconds (TPS, CPU µs per transaction).
 * Without <after-ref>, "after" is the working tree as built in dist/: run `npm run build` first.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ref = process.argv[2];
if (!ref || ref.startsWith('--')) {
  console.error(
    'usage: node bench/compare.mjs <before-ref> [<after-ref>] [--path gateway|full] [--what result|pgbench] ...',
  );
  process.exit(2);
}
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const options = {
  path: arg('path', 'gateway'),
  what: arg('what', 'result'),
  mb: Number(arg('mb', 500)),
  mode: arg('mode', 'prepared'),
  clients: Number(arg('clients', 8)),
  seconds: Number(arg('seconds', 5)),
  runs: Number(arg('runs', 4)),
};
const rounds = Number(arg('rounds', 2));

const afterRef = process.argv[3] && !process.argv[3].startsWith('--') ? process.argv[3] : undefined;

/** A worktree of a ref, compiled with this checkout's dependencies; removed at exit. */
function buildOf(gitRef) {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-compare-'));
  execFileSync('git', ['worktree', 'add', '--detach', dir, gitRef], { cwd: ROOT, stdio: 'ignore' });
  process.on('exit', () => {
    try {
      execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], {
    cwd: dir,
    stdio: 'inherit',
  });
  return dir;
}
const base = buildOf(ref);
const after = afterRef ? buildOf(afterRef) : ROOT;

/** One stack of one build, `options.runs` measured runs after warm-up, as parsed JSON lines. */
function session(root) {
  return new Promise((res, rej) => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bench', 'lib', 'compare-session.mjs'), root, JSON.stringify(options)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.on('exit', (code) =>
      code === 0
        ? res(
            out
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l)),
          )
        : rej(new Error(`compare session for ${root} exited ${code}`)),
    );
  });
}

const results = { before: [], after: [] };
// ABBA: the order flips every round, so drift over the session (and whichever build goes first after a
// stack was torn down) does not favour one side.
for (let round = 1; round <= rounds; round++) {
  const order = [
    ['before', base],
    ['after', after],
  ];
  if (round % 2 === 0) order.reverse();
  for (const [label, root] of order) {
    const runs = await session(root);
    for (const r of runs) console.log(`${label} round ${round}`, JSON.stringify(r));
    results[label].push(...runs);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
console.log(
  `\n${options.what} through the ${options.path} path, ${ref} (before) vs ${afterRef ?? 'the working tree'} (after), medians:`,
);
for (const [label, runs] of Object.entries(results)) {
  const keys = Object.keys(runs[0] ?? {});
  console.log(`  ${label.padEnd(6)} ${keys.map((k) => `${k} ${median(runs.map((r) => r[k]))}`).join('  ')}`);
}
