/**
 * Run a command under a real pseudo-terminal of a given size (0×0 by default: what CI runners and
 * `script` give), optionally sending it a signal once its output matches a pattern. Uses python3's pty
 * module (on every Debian machine), since Node has no pty of its own.
 */
import { spawn } from 'node:child_process';

const DRIVER = `
import os, pty, sys, time, signal, fcntl, termios, struct, select, re, json
cfg = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', cfg['rows'], cfg['cols'], 0, 0))
    for k, v in cfg['env'].items(): os.environ[k] = v
    os.execvp(cfg['argv'][0], cfg['argv'])
out = b''; sent = False; start = time.time()
pattern = re.compile(cfg['signalWhen'].encode()) if cfg.get('signalWhen') else None
while True:
    if pattern and not sent and pattern.search(out):
        os.kill(pid, getattr(signal, cfg['signal'])); sent = True
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try: data = os.read(fd, 65536)
        except OSError: break
        if not data: break
        out += data
        if len(out) > cfg['maxBytes']: os.kill(pid, signal.SIGKILL); break
    if time.time() - start > cfg['limitSeconds']: os.kill(pid, signal.SIGKILL); break
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'code': os.waitstatus_to_exitcode(status), 'bytes': len(out), 'output': out[-4000:].decode('utf-8', 'replace')}))
`;

export interface PtyResult {
  /** Exit code; -9 when the driver had to kill it (output past maxBytes, or past the time limit). */
  code: number;
  /** How many bytes the command wrote to the terminal in all. */
  bytes: number;
  /** The last 4,000 bytes. */
  output: string;
}

export function runInPty(
  argv: string[],
  options: {
    env?: Record<string, string>;
    rows?: number;
    cols?: number;
    /** Send `signal` once the output matches this regular expression (Python syntax). */
    signalWhen?: string;
    signal?: 'SIGTERM' | 'SIGINT';
    maxBytes?: number;
    limitSeconds?: number;
  } = {},
): Promise<PtyResult> {
  const cfg = {
    argv,
    env: options.env ?? {},
    rows: options.rows ?? 0,
    cols: options.cols ?? 0,
    signalWhen: options.signalWhen,
    signal: options.signal ?? 'SIGTERM',
    maxBytes: options.maxBytes ?? 1_000_000,
    limitSeconds: options.limitSeconds ?? 60,
  };
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', DRIVER, JSON.stringify(cfg)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('exit', () => {
      try {
        resolve(JSON.parse(stdout) as PtyResult);
      } catch {
        reject(new Error(`pty driver failed: ${stderr}${stdout}`));
      }
    });
  });
}
