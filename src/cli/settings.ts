/**
 * Where the CLI keeps its settings, and profiles: each profile names a gateway (and a private CA, a token
 * store) and has its own login, so one person can be alice on staging and rita on prod at once.
 *
 * The directory is HOOPCTL_HOME, else the per-OS one earlier versions used (~/.config/hoopctl-nodejs on
 * Linux). settings.json holds `{ version: 2, current, profiles: { NAME: {...} } }`; a version-1 file
 * (`{ gateway, caFile }`, one implicit profile) is read as the profile `default`, so nothing changes for
 * existing users. The profile in use: --profile, else HOOPCTL_PROFILE, else `hoopctl profile use`, else
 * `default`. Files are written whole to a temporary file (mode 0600) and renamed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, ExitCode } from '../shared/errors.js';
import type { GatewayTarget } from './api.js';

export interface ProfileSettings {
  gateway?: string;
  caFile?: string;
  /** keychain or file; --token-store / HOOPCTL_TOKEN_STORE overrides it. */
  tokenStore?: 'keychain' | 'file';
  /** Who last logged in with this profile (shown by `profile list`; the token is the truth). */
  subject?: string;
}

interface SettingsFile {
  version: 2;
  current?: string;
  profiles: Record<string, ProfileSettings>;
}

export const DEFAULT_PROFILE = 'default';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Settings every command takes as a global flag or from the environment; the flag wins. `from` names
 * where a value came from, so an error can say which flag or variable to fix.
 */
export const GLOBAL_SETTINGS = {
  home: { flag: '--home', env: 'HOOPCTL_HOME' },
  caFile: { flag: '--ca-file', env: 'HOOPCTL_CA_FILE' },
  tokenStore: { flag: '--token-store', env: 'HOOPCTL_TOKEN_STORE' },
  clientId: { flag: '--client-id', env: 'HOOPCTL_CLIENT_ID' },
  clientSecret: { flag: '--client-secret', env: 'HOOPCTL_CLIENT_SECRET' },
  idToken: { flag: '--id-token', env: 'HOOPCTL_ID_TOKEN' },
} as const;
export type GlobalSetting = keyof typeof GLOBAL_SETTINGS;
/** The global flags given; --id-token-file has no variable (HOOPCTL_ID_TOKEN holds the token itself). */
export type GlobalFlags = Partial<Record<GlobalSetting | 'idTokenFile' | 'gateway', string>>;

let globalFlags: GlobalFlags = {};
/** The global flags of this run (set once, before any command runs). */
export function useGlobalFlags(flags: GlobalFlags): void {
  globalFlags = flags;
}

/** --gateway, if given (before or after the command: the root takes it wherever it is). */
export function gatewayFlag(): string | undefined {
  return globalFlags.gateway || undefined;
}

/** --id-token-file, if given. */
export function idTokenFileFlag(): string | undefined {
  return globalFlags.idTokenFile || undefined;
}

/** A global setting's value and where it came from (the flag, else its variable); undefined when unset. */
export function globalSetting(key: GlobalSetting): { value: string; from: string } | undefined {
  const { flag, env } = GLOBAL_SETTINGS[key];
  const fromFlag = globalFlags[key];
  if (fromFlag) return { value: fromFlag, from: flag };
  const fromEnv = process.env[env];
  return fromEnv ? { value: fromEnv, from: env } : undefined;
}

/** The directory settings and token files live in. */
export function homeDir(): string {
  const given = globalSetting('home')?.value;
  if (given) return given;
  const home = homedir();
  if (process.platform === 'darwin') return join(home, 'Library', 'Preferences', 'hoopctl-nodejs');
  if (process.platform === 'win32')
    return join(process.env.APPDATA || join(home, 'AppData', 'Roaming'), 'hoopctl-nodejs', 'Config');
  return join(process.env.XDG_CONFIG_HOME || join(home, '.config'), 'hoopctl-nodejs');
}

function settingsPath(): string {
  return join(homeDir(), 'settings.json');
}

export function readSettings(): SettingsFile {
  const path = settingsPath();
  if (!existsSync(path)) return { version: 2, profiles: {} };
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message} (fix or delete it)`);
  }
  if (raw.version === 2 && raw.profiles && typeof raw.profiles === 'object') return raw as never;
  // Version 1: one implicit profile.
  const legacy: ProfileSettings = {};
  if (typeof raw.gateway === 'string') legacy.gateway = raw.gateway;
  if (typeof raw.caFile === 'string') legacy.caFile = raw.caFile;
  return { version: 2, profiles: Object.keys(legacy).length ? { [DEFAULT_PROFILE]: legacy } : {} };
}

export function writeSettings(file: SettingsFile): void {
  writePrivateFile(settingsPath(), `${JSON.stringify(file, null, 2)}\n`);
}

/** Write a file only its owner can read: temporary file with mode 0600, then rename (never half-written). */
export function writePrivateFile(path: string, text: string): void {
  mkdirSync(homeDir(), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

let profileFlag: string | undefined;
/** --profile NAME (set once, before any command runs). */
export function useProfile(name: string | undefined): void {
  if (name !== undefined) checkProfileName(name);
  profileFlag = name;
}

export function checkProfileName(name: string): string {
  if (!NAME.test(name)) {
    throw new CliError(
      `"${name}" is not a profile name (letters, digits, . _ -; at most 64)`,
      ExitCode.usage,
    );
  }
  return name;
}

/** The profile this command acts as. */
export function currentProfile(): string {
  const name = profileFlag || process.env.HOOPCTL_PROFILE || readSettings().current || DEFAULT_PROFILE;
  return checkProfileName(name);
}

export function profileSettings(name = currentProfile()): ProfileSettings {
  return readSettings().profiles[name] ?? {};
}

export function updateProfile(name: string, change: Partial<ProfileSettings>): void {
  const file = readSettings();
  const merged = { ...file.profiles[name], ...change };
  for (const key of Object.keys(merged) as (keyof ProfileSettings)[]) {
    if (merged[key] === undefined) delete merged[key];
  }
  file.profiles[name] = merged;
  writeSettings(file);
}

/** "https://gw:8443 (profile prod)": how every message names what it is about. */
export function describeTarget(target: GatewayTarget): string {
  return `${target.url} (profile ${target.profile ?? DEFAULT_PROFILE})`;
}

/** The gateway to talk to: --gateway flag, HOOPCTL_GATEWAY, or the profile's (what `login --gateway` remembered). */
export function resolveGateway(flag?: string): GatewayTarget {
  const target = configuredGateway(flag);
  if (target) return target;
  const profile = currentProfile();
  throw new CliError(
    `no gateway for profile ${profile}: pass --gateway URL, set HOOPCTL_GATEWAY, or run hoopctl login --gateway URL${profile === DEFAULT_PROFILE ? '' : ` --profile ${profile}`}`,
    ExitCode.usage,
  );
}

/** The same as resolveGateway, but undefined when no gateway is given or remembered. */
export function configuredGateway(flag?: string): GatewayTarget | undefined {
  const profile = currentProfile();
  const stored = profileSettings(profile);
  const url = flag || gatewayFlag() || process.env.HOOPCTL_GATEWAY || stored.gateway;
  return url ? { url: parseGatewayUrl(url), caFile: caFileFor(stored), profile } : undefined;
}

/**
 * A new profile's login with no --gateway takes the gateway (and CA file) of the profile in use
 * otherwise — `profile use`'s choice, else `default` — so `hoopctl --profile rita login` just works.
 */
export function gatewayToInherit(profile: string): { from: string; settings: ProfileSettings } | undefined {
  const file = readSettings();
  for (const from of [file.current, DEFAULT_PROFILE]) {
    const settings = from && from !== profile ? file.profiles[from] : undefined;
    if (from && settings?.gateway) return { from, settings };
  }
  return undefined;
}

/** --ca-file, HOOPCTL_CA_FILE or the profile's CA file, checked now: an unreadable one is named, not ENOENT. */
export function caFileFor(stored: ProfileSettings): string | undefined {
  const given =
    globalSetting('caFile') ?? (stored.caFile ? { value: stored.caFile, from: 'the profile' } : undefined);
  if (!given) return undefined;
  try {
    readFileSync(given.value);
  } catch (err) {
    throw new CliError(
      `cannot read the CA file ${given.value} (${given.from}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      ExitCode.usage,
    );
  }
  return given.value;
}

export function parseGatewayUrl(url: string): string {
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
  return parsed.origin;
}
