/**
 * `hoopctl --version`: the CLI's version (from the package.json it was installed with) and, when this
 * profile is logged in, the gateway's (from its public discovery document, with a short timeout).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;
/** The version in hoopctl's own package.json (found upwards from this file: dist/src/cli or src/cli). */
export function cliVersion(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'hoopctl' && pkg.version) {
        cached = pkg.version;
        return cached;
      }
    }
    dir = dirname(dir);
  }
  cached = '0.0.0';
  return cached;
}

export async function printVersion(json: boolean): Promise<void> {
  const gateway = await gatewayVersion().catch(() => undefined);
  if (json) {
    process.stdout.write(`${JSON.stringify({ hoopctl: cliVersion(), gateway: gateway ?? null }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`hoopctl ${cliVersion()}\n`);
  if (gateway) {
    process.stdout.write(
      `gateway ${gateway.version ?? 'unreachable'} at ${gateway.url} (profile ${gateway.profile})${gateway.error ? `: ${gateway.error}` : ''}\n`,
    );
  }
}

interface GatewayVersion {
  url: string;
  profile: string;
  version?: string;
  error?: string;
}

/** Only when logged in (a stored login, or CI credentials in the environment): never a surprise request. */
async function gatewayVersion(): Promise<GatewayVersion | undefined> {
  const { gatewayFlag, profileSettings, resolveGateway } = await import('./settings.js');
  if (!gatewayFlag() && !process.env.HOOPCTL_GATEWAY && !profileSettings().gateway) return undefined;
  const target = resolveGateway();
  const { ciMode, storedLogin } = await import('./tokens.js');
  if (!ciMode() && !storedLogin(target)) return undefined;
  const { apiRequest } = await import('./api.js');
  const { DISCOVERY_PATH } = await import('../shared/api.js');
  const base = { url: target.url, profile: target.profile ?? 'default' };
  try {
    const discovery = await apiRequest<{ version?: string }>(target, 'GET', DISCOVERY_PATH, {
      timeoutMs: 2000,
    });
    return { ...base, version: discovery.version ?? 'unknown' };
  } catch (err) {
    return { ...base, error: (err as Error).message };
  }
}
