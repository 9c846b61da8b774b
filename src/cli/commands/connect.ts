/**
 * `hoopctl connect <conn>`: a local Postgres port that tunnels each client connection to the gateway;
 * `connect --exec CMD` and `hoopctl psql <conn>` start a client on it and close it when the client exits.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { Command } from 'commander';
import type { WebSocket } from 'ws';
import type { ConnectionView } from '../../shared/api.js';
import { CliError, ExitCode } from '../../shared/errors.js';
import { apiRequest } from '../api.js';
import { exitCodeForSignal, takeOverSignals } from '../interrupt.js';
import { c, info, selectFields } from '../output.js';
import { describeTarget, resolveGateway } from '../settings.js';
import { getAccessToken } from '../tokens.js';
import { openTunnelSocket } from '../tunnel.js';

export function registerConnectCommand(program: Command): void {
  program
    .command('connect')
    .description('Open a local port that tunnels PostgreSQL to the gateway; prints a ready psql command')
    .argument('<connection>', 'connection name (see: hoopctl connections)')
    .option('-p, --port <port>', 'local port on 127.0.0.1 (default: a free port)', parsePort)
    .option(
      '--exec <command>',
      'run this command (through sh -c) with PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE and DATABASE_URL set; close the tunnel when it exits',
    )
    .option(
      '--json [fields]',
      'print one JSON line { host, port, user, password, database, url } once listening (for scripts), then wait',
    )
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .addHelpText(
      'after',
      `
Only clients that know the one-time password printed here can use the port: another local
user cannot ride your tunnel. Every statement is checked, masked and recorded by the gateway.
With --exec, the command's exit code is hoopctl's.

Examples:
  hoopctl connect prod-db
  hoopctl connect prod-db --port 5433
  psql "postgresql://hoop:<password>@127.0.0.1:5433/prod-db?sslmode=disable"
  hoopctl connect prod-db --exec 'psql -At -c "select count(*) from orders"'
  hoopctl connect prod-db --exec 'psql "$DATABASE_URL" -f report.sql'`,
    )
    .action(
      async (
        connection: string,
        opts: { port?: number; gateway?: string; exec?: string; json?: boolean | string },
      ) => {
        const tunnel = await startLocalTunnel(connection, opts);
        if (opts.exec !== undefined) {
          process.exitCode = await runChild(tunnel, '/bin/sh', ['-c', opts.exec], `--exec ${opts.exec}`);
          return;
        }
        if (opts.json) {
          const fields = {
            host: '127.0.0.1',
            port: tunnel.port,
            user: 'hoop',
            password: tunnel.password,
            database: connection,
            url: tunnel.url,
          };
          const shown = typeof opts.json === 'string' ? selectFields(fields, opts.json.split(',')) : fields;
          process.stdout.write(`${JSON.stringify(shown)}\n`);
        } else
          process.stdout.write(
            `${c.green('✔')} Tunnel to ${c.bold(connection)} through ${tunnel.gateway} is listening on 127.0.0.1:${tunnel.port}\n\n` +
              `  psql "${tunnel.url}"\n\n` +
              `  URL:      ${tunnel.url}\n` +
              `  password: ${tunnel.password}  (one-time: valid while this command runs)\n\n` +
              `Press Ctrl-C to close the tunnel.\n`,
          );
        // Ctrl-C and SIGTERM are how a tunnel is meant to end: close it and exit 0.
        await new Promise<void>((resolve) => {
          takeOverSignals(() => {
            tunnel.close();
            resolve();
          });
        });
      },
    );

  program
    .command('psql')
    .description('Start psql through a tunnel to a connection; the tunnel closes when psql exits')
    .argument('<connection>', 'connection name (see: hoopctl connections)')
    .argument('[psql-args...]', 'arguments for psql, after --')
    .option('--gateway <url>', 'gateway URL (default: HOOPCTL_GATEWAY or what login remembered)')
    .addHelpText(
      'after',
      `
psql gets the connection through PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE: give it
anything else after --. Its exit code is hoopctl's. Needs psql on PATH (PSQL=/path/to/psql to
pick another).

Examples:
  hoopctl psql prod-db
  hoopctl psql prod-db -- -c 'select 1'
  hoopctl psql prod-db -- -At -f report.sql`,
    )
    .action(async (connection: string, psqlArgs: string[], opts: { gateway?: string }) => {
      const tunnel = await startLocalTunnel(connection, opts);
      process.exitCode = await runChild(tunnel, process.env.PSQL || 'psql', psqlArgs, 'psql');
    });
}

export interface LocalTunnel {
  port: number;
  password: string;
  url: string;
  gateway: string;
  /** Environment for a client: PGHOST ... DATABASE_URL. */
  env: Record<string, string>;
  close(): void;
}

/** Check access, then listen on 127.0.0.1 and tunnel each client connection to the gateway. */
export async function startLocalTunnel(
  connection: string,
  opts: { port?: number; gateway?: string },
): Promise<LocalTunnel> {
  const target = resolveGateway(opts.gateway);
  // Fail now, not at the first psql: are we logged in, and may we reach this connection?
  const reachable = await apiRequest<ConnectionView[]>(target, 'GET', '/v1/connections', {
    token: await getAccessToken(target),
  });
  const view = reachable.find((r) => r.name === connection);
  if (!view?.policies.length) {
    const names =
      reachable
        .filter((r) => r.policies.length)
        .map((r) => r.name)
        .join(', ') || 'none';
    const ask = view?.requestable[0]
      ? `; request access first: hoopctl request ${connection} --policy ${view.requestable[0].name} --for 1h --reason "..."`
      : '';
    throw new CliError(
      `no connection "${connection}" for you on ${describeTarget(target)} (yours: ${names})${ask}`,
      ExitCode.denied,
    );
  }
  const password = randomBytes(18).toString('base64url');
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void tunnelOne(socket, { target, connection, password });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new CliError(
          err.code === 'EADDRINUSE'
            ? `port ${opts.port} is already in use: pick another with --port`
            : err.message,
          ExitCode.usage,
        ),
      ),
    );
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const url = `postgresql://hoop:${password}@127.0.0.1:${port}/${encodeURIComponent(connection)}?sslmode=disable`;
  return {
    port,
    password,
    url,
    gateway: target.url,
    env: {
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      PGUSER: 'hoop',
      PGPASSWORD: password,
      PGDATABASE: connection,
      PGSSLMODE: 'disable',
      DATABASE_URL: url,
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * Run a client with the tunnel's environment, its stdio the terminal's; the tunnel closes when it
 * exits. Ctrl-C belongs to the child (psql cancels the running query with it), so hoopctl ignores
 * SIGINT while it runs and passes SIGTERM and SIGHUP on.
 */
async function runChild(tunnel: LocalTunnel, command: string, args: string[], what: string): Promise<number> {
  const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, ...tunnel.env } });
  const giveBack = takeOverSignals((signal) => {
    if (signal !== 'SIGINT') child.kill(signal);
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new CliError(
            err.code === 'ENOENT'
              ? `${command} is not installed or not on PATH: install the PostgreSQL client (e.g. apt-get install postgresql-client), or use hoopctl connect`
              : `cannot start ${what}: ${err.message}`,
          ),
        ),
      );
      child.once('exit', (code, signal) => resolve(code ?? (signal ? exitCodeForSignal(signal) : 1)));
    });
  } finally {
    giveBack();
    tunnel.close();
  }
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new CliError(`not a port: ${value}`, ExitCode.usage);
  return port;
}

/** Bytes queued on the WebSocket before we stop reading the local client. */
const WS_HIGH_WATER = 1 << 20;

/**
 * One local client connection ↔ one WebSocket. A fresh access token each time (refreshed as it expires).
 * Bytes are relayed directly (socket 'data' → ws.send, ws 'message' → socket.write) with backpressure
 * both ways, without stream layers in between: this process is on every statement's path.
 */
async function tunnelOne(
  socket: Socket,
  opts: { target: ReturnType<typeof resolveGateway>; connection: string; password: string },
) {
  socket.pause();
  socket.setNoDelay(true);
  let ws: WebSocket;
  try {
    const token = await getAccessToken(opts.target);
    ({ ws } = await openTunnelSocket({
      target: opts.target,
      connection: opts.connection,
      token,
      localPassword: opts.password,
      client: 'connect',
    }));
  } catch (err) {
    info(`tunnel: ${(err as Error).message}`);
    socket.end(fatal((err as Error).message));
    return;
  }
  if (socket.destroyed) {
    ws.terminate();
    return;
  }
  // Gateway → client: stop reading the WebSocket while the local client is slow to take its bytes.
  // Over TLS each 16 KiB record reaches JavaScript on its own; the messages one network read completes
  // are written to the local socket together (corked until the I/O phase ends), not one write each.
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  ws.on('message', (data: Buffer) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    // A corked socket reports "full" early; pause only when a megabyte is really waiting.
    socket.write(data);
    if (socket.writableLength > WS_HIGH_WATER && !ws.isPaused) ws.pause();
  });
  socket.on('drain', () => {
    if (ws.isPaused) ws.resume();
  });
  // Client → gateway: stop reading the local socket while the WebSocket's send buffer is full.
  let socketPaused = false;
  const sent = () => {
    if (socketPaused && ws.bufferedAmount < WS_HIGH_WATER / 2 && ws.readyState === ws.OPEN) {
      socketPaused = false;
      socket.resume();
    }
  };
  socket.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, sent);
    if (ws.bufferedAmount > WS_HIGH_WATER && !socketPaused) {
      socketPaused = true;
      socket.pause();
    }
  });
  socket.on('end', () => ws.close());
  socket.on('close', () => {
    if (ws.readyState !== ws.CLOSED) ws.terminate();
  });
  socket.on('error', () => ws.terminate());
  ws.on('close', () => socket.end());
  ws.on('error', () => socket.destroy());
  socket.resume();
}

/** A Postgres FATAL ErrorResponse, so psql shows why the tunnel could not open. */
function fatal(message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C28000\0Mhoop: ${message}\0\0`, 'utf8');
  const out = Buffer.alloc(5 + fields.length);
  out[0] = 0x45;
  out.writeInt32BE(4 + fields.length, 1);
  fields.copy(out, 5);
  return out;
}
