/** Globs as policies write them: `*` any run of characters, `?` one character, everything else literal. */
import { downcaseIdentifier, parseName } from './names.js';

/** Compile one glob to an anchored RegExp (case-insensitive when asked). */
export function globToRegExp(glob: string, caseInsensitive = false): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's');
}

/** Compile a list of globs once; the returned test is true when any of them matches. */
export function compileGlobs(globs: readonly string[], caseInsensitive = false): (value: string) => boolean {
  const patterns = globs.map((g) => globToRegExp(g, caseInsensitive));
  return (value) => patterns.some((p) => p.test(value));
}

/**
 * Globs over SQL names (`public.orders`, `"Audit".*`, `order*`), matched part by part against resolved
 * names (`schema.name`, canonical as names.ts prints them). Parts follow SQL: unquoted ones fold to
 * lower case, quoted ones keep theirs; `*` and `?` are wildcards in either. A one-part glob means
 * `defaultSchema` (`public` for relations), or any schema when it is undefined (functions).
 * `caseInsensitive` matches across case as well: deny and approve rules use it, so they catch more.
 */
export function compileNameGlobs(
  globs: readonly string[],
  options: { defaultSchema?: string; caseInsensitive: boolean },
): (name: string) => boolean {
  const patterns = globs.map((glob) => {
    const parts = splitGlobParts(glob);
    // A quoted part is exact; an unquoted one, in a deny or approve rule, matches any case.
    const compile = (part: GlobPart) => globToRegExp(part.text, options.caseInsensitive && !part.quoted);
    const name = compile(parts[parts.length - 1] ?? { text: '', quoted: false });
    const schemaPart = parts.length > 1 ? parts[parts.length - 2]! : undefined;
    const schema = schemaPart
      ? compile(schemaPart)
      : options.defaultSchema === undefined
        ? undefined
        : compile({ text: options.defaultSchema, quoted: false });
    return { schema, name };
  });
  return (resolved) => {
    const parts = parseName(resolved);
    const name = parts[parts.length - 1] ?? '';
    const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
    return patterns.some(
      (p) => p.name.test(name) && (p.schema === undefined || (schema !== undefined && p.schema.test(schema))),
    );
  };
}

export interface GlobPart {
  text: string;
  /** Written in double quotes (exact case). */
  quoted: boolean;
}

/** `public."My Table"` -> public, My Table (quoted); unquoted parts are folded to lower case. */
export function splitGlobParts(glob: string): GlobPart[] {
  const parts: GlobPart[] = [];
  let current = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (quoted) {
      if (ch === '"' && glob[i + 1] === '"') {
        current += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else current += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === '.') {
      parts.push({ text: current, quoted: wasQuoted });
      current = '';
      wasQuoted = false;
    } else current += wasQuoted ? ch : downcaseIdentifier(ch);
  }
  parts.push({ text: current, quoted: wasQuoted });
  return parts;
}
