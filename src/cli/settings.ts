/**
 * Where the CLI keeps its settings (the gateway URL `login --gateway` remembered) and, when no keychain is
 * usable, its token file: HOOPCTL_HOME, else conf's per-OS directory (~/.config/hoopctl-nodejs on Linux).
 */
import Conf from 'conf';
import { CliError, ExitCode } from '../shared/errors.js';
import type { GatewayTarget } from './api.js';

interface SettingsShape {
  gateway?: string;
  caFile?: string;
}

let store: Conf<SettingsShape> | undefined;
export function settings(): Conf<SettingsShape> {
  store ??= new Conf<SettingsShape>({
    projectName: 'hoopctl',
    cwd: process.env.HOOPCTL_HOME || undefined,
    configName: 'settings',
    configFileMode: 0o600,
  });
  return store;
}

/** The directory settings and the token file live in. */
export function homeDir(): string {
  const path = settings().path;
  return path.slice(0, path.lastIndexOf('/'));
}

/** The gateway to talk to: --gateway flag, HOOPCTL_GATEWAY, or what `login --gateway` remembered. */
export function resolveGateway(flag?: string): GatewayTarget {
  const url = flag || process.env.HOOPCTL_GATEWAY || settings().get('gateway');
  if (!url) {
    throw new CliError(
      'no gateway configured: pass --gateway URL, set HOOPCTL_GATEWAY, or run hoopctl login --gateway URL',
      ExitCode.usage,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(
      `not a URL: "${url}" (expected e.g. https://gateway.example.com:8443)`,
      ExitCode.usage,
    );
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new CliError(`the gateway URL must be https:// (or http:// on loopback): ${url}`, ExitCode.usage);
  }
  return { url: parsed.origin, caFile: process.env.HOOPCTL_CA_FILE || settings().get('caFile') || undefined };
}
