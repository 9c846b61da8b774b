/** Read gateway.yaml: YAML syntax errors and schema errors both name the file, the key and, where known, the line. */
import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { type GatewayConfig, configSchema } from './schema.js';

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

export function parseConfig(text: string, file: string): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}: ` : ''}${e.message.split('\n')[0]}`;
      }),
    );
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (result.success) return result.data;
  throw new ConfigError(file, describeIssues(result.error.issues, doc.contents, lineCounter));
}

export function loadConfigFile(file: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfig(text, file);
}

function describeIssues(issues: z.core.$ZodIssue[], root: unknown, lines: LineCounter): string[] {
  return issues.map((issue) => {
    const line = lineOf(root, issue.path, lines);
    const where = line ? ` (line ${line})` : '';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      return `${keyPath(issue.path)}${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required';
    return `${keyPath(issue.path)}${where}: ${message}`;
  });
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
