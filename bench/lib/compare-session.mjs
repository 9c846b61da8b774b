// One side of bench/compare.mjs: start the stack of the build at <root> (its own bench/lib.mjs and
// dist/), warm up, measure, print one JSON line per run on stdout.
//   node bench/lib/compare-session.mjs <root> '<options json>'
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, json] = process.argv.slice(2);
const options = JSON.parse(json);
const { startBench, rawConnect } = await import(pathToFileURL(join(root, 'bench', 'lib.mjs')).href);

const bench = await startBench({ pgbouncer: false });
const p = bench.paths[options.path];
if (!p?.pid) throw new Error(`no gateway path "${options.path}"`);

/** The hoopctl connect in front of the gateway was started right after it, as a child of this process. */
const connects = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
  .stdout.split('\n')
  .filter((l) => l.includes('hoopctl') && l.includes('connect'))
  .map((l) => Number(l.trim().split(/\s+/)[0]))
  .filter((pid) => pid > p.pid)
  .sort((a, b) => a - b);
const pids = { gateway: p.pid, connect: connects[0] };

const cpu = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, seconds
};

/**
 * A field of /proc/<pid>/status in MB (VmRSS, VmHWM). Not lib.mjs's statusKb: this script loads the lib.mjs
 * of the build it measures, and older refs' lib.mjs may not have it.
 */
const statusMb = (pid, field) =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

async function result() {
  const rows = Math.round((options.mb * 1e6) / 1011);
  // The gateway's peak RSS during this stream alone: "5" resets VmHWM to the current RSS.
  writeFileSync(`/proc/${p.pid}/clear_refs`, '5');
  const rss = statusMb(p.pid, 'VmRSS');
  const c = await rawConnect(p);
  const t = process.hrtime.bigint();
  const bytes = await c.query(`select repeat('x', 1000) from generate_series(1, ${rows})`);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  c.close();
  return {
    'MB/s': Math.round(bytes / 1e6 / seconds),
    'gateway RSS MB': Math.round(rss),
    'gateway peak MB': Math.round(statusMb(p.pid, 'VmHWM')),
  };
}

function pgbench() {
  const r = spawnSync(
    'pgbench',
    [
      '-S',
      '-n',
      '-M',
      options.mode,
      '-c',
      String(options.clients),
      '-j',
      '2',
      '-T',
      String(options.seconds),
    ].concat(['-h', '127.0.0.1', '-p', String(p.port), '-U', p.user, p.database]),
    { env: { ...process.env, PGPASSWORD: p.password }, encoding: 'utf8' },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
  const tx = Number(/processed: (\d+)/.exec(r.stdout)?.[1]);
  if (!tps) throw new Error(`pgbench failed: ${r.stderr}`);
  return { tps: Math.round(tps), tx };
}

const measure = options.what === 'pgbench' ? pgbench : result;
for (let i = 0; i < 2; i++) await measure(); // warm-up: V8 optimises the hot paths first
for (let i = 0; i < options.runs; i++) {
  const before = { gateway: cpu(pids.gateway), connect: pids.connect ? cpu(pids.connect) : 0 };
  const r = await measure();
  const used = {
    gateway: cpu(pids.gateway) - before.gateway,
    connect: pids.connect ? cpu(pids.connect) - before.connect : 0,
  };
  const { tx, ...shown } = r;
  const line =
    options.what === 'pgbench'
      ? {
          ...shown,
          'gateway µs/tx': Math.round((used.gateway * 1e6) / tx),
          'connect µs/tx': Math.round((used.connect * 1e6) / tx),
        }
      : {
          ...shown,
          'gateway cpu s': Number(used.gateway.toFixed(2)),
          'connect cpu s': Number(used.connect.toFixed(2)),
        };
  console.log(JSON.stringify(line));
}
bench.stop();
setTimeout(() => process.exit(0), 500).unref();
