import { createServer } from 'node:net';

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Whether 127.0.0.1:port can be listened on right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port N such that N and N+1 are free (the dev gateway and its IdP), near `from` when possible. */
export async function freePortPair(from: number): Promise<number> {
  for (let candidate = from + 2; candidate < from + 200 && candidate < 65534; candidate += 2) {
    if ((await isPortFree(candidate)) && (await isPortFree(candidate + 1))) return candidate;
  }
  return freePort();
}
