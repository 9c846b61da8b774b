/** Read gateway.yaml: YAML syntax errors and schema errors both name the file, the key and, where known, the line. */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { checkedConfigSchema, type GatewayConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid configuration\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `connections[0].tls.mode` from a zod path. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

/**
 * Names a key of the loaded file with its line, as schema errors do: `connections[0].password_env (line 12)`.
 * Checks beyond the schema (files, secrets) word their problems with it.
 */
export type KeyLocator = (path: readonly (string | number)[]) => string;

export interface LoadedConfig {
  config: GatewayConfig;
  where: KeyLocator;
}

export function parseConfig(text: string, file: string): GatewayConfig {
  return parseConfigDocument(text, file).config;
}

function parseConfigDocument(text: string, file: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  const result = checkedConfigSchema.safeParse(doc.toJS() ?? {});
  if (!result.success)
    throw new ConfigError(file, describeIssues(result.error.issues, doc.contents, lineCounter, doc.toJS()));
  return { config: result.data, where: (path) => located(path, lineOf(doc.contents, path, lineCounter)) };
}

export function loadConfigFile(file: string): GatewayConfig {
  return loadConfig(file).config;
}

/** The configuration file, parsed and checked against the schema, with a way to name its keys' lines. */
export function loadConfig(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  const loaded = parseConfigDocument(text, file);
  resolveRelativePaths(loaded.config, dirname(resolve(file)));
  return loaded;
}

function located(path: readonly PropertyKey[], line: number | undefined): string {
  return `${keyPath(path)}${line ? ` (line ${line})` : ''}`;
}

/** Relative file paths in a config mean relative to the config file, wherever the gateway was started from. */
export function resolveRelativePaths(config: GatewayConfig, baseDir: string): GatewayConfig {
  const at = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  if (config.listen.tls)
    config.listen.tls = { cert: at(config.listen.tls.cert), key: at(config.listen.tls.key) };
  if ('path' in config.store) config.store = { path: at(config.store.path) };
  for (const c of config.connections) {
    if (c.password_file) c.password_file = at(c.password_file);
    if (c.tls.ca) c.tls.ca = at(c.tls.ca);
  }
  for (const issuer of config.identity.issuers) if (issuer.ca) issuer.ca = at(issuer.ca);
  if (config.audit.signing_key_file) config.audit.signing_key_file = at(config.audit.signing_key_file);
  config.audit.trusted_keys = config.audit.trusted_keys.map(at);
  if (config.diagnostics?.tls)
    config.diagnostics.tls = { cert: at(config.diagnostics.tls.cert), key: at(config.diagnostics.tls.key) };
  for (const sink of config.audit.sinks) if (sink.type === 'file') sink.path = at(sink.path);
  return config;
}

function describeIssues(
  issues: z.core.$ZodIssue[],
  root: unknown,
  lines: LineCounter,
  values: unknown,
): string[] {
  return issues.map((issue) => {
    const where = located(issue.path, lineOf(root, issue.path, lines));
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    // A missing key reads better as "is required" than as the type or union zod expected there.
    if (valueAt(values, issue.path) === undefined && issue.code !== 'custom') message = 'is required';
    return `${where}: ${message}`;
  });
}

function valueAt(values: unknown, path: readonly PropertyKey[]): unknown {
  let value = values;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function lineOf(root: unknown, path: readonly PropertyKey[], lines: LineCounter): number | undefined {
  let node = root as YamlNode | undefined;
  let found = node;
  for (const part of path) {
    if (isMap(node)) node = node.get(part as string, true) as YamlNode | undefined;
    else if (isSeq(node)) node = node.get(part as number, true) as YamlNode | undefined;
    else break;
    if (!node) break;
    found = node;
  }
  const offset = (found as { range?: [number, number, number] } | undefined)?.range?.[0];
  return offset === undefined ? undefined : lines.linePos(offset).line;
}
