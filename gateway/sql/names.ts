/**
 * SQL names as the server sees them: identifiers keep their case when quoted (the parser has already
 * folded unquoted ones), are truncated to 63 bytes, and print in one canonical form, `schema.name`, each
 * part double-quoted only when it has to be (`public."Secrets"`, `"my.schema".t`). Also the forms a
 * setting's value takes (`SplitIdentifierString`: `"$user", public`) and the references the classifier
 * hands to name resolution. Pure.
 */

/** PostgreSQL's NAMEDATALEN - 1: longer identifiers are truncated (by the parser, and here for strings). */
export const MAX_IDENTIFIER_BYTES = 63;

const PLAIN = /^[a-z_][a-z0-9_]*$/;

/** One part of a name in canonical form: bare when it is a plain lower-case identifier, else quoted. */
export function quotePart(part: string): string {
  return PLAIN.test(part) ? part : `"${part.replaceAll('"', '""')}"`;
}

/** Always quoted: safe to put into SQL text whatever the name is (keywords included). */
export function quoteIdentifier(part: string): string {
  return `"${part.replaceAll('"', '""')}"`;
}

/** A SQL string literal (standard-conforming strings). */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export function formatName(parts: readonly string[]): string {
  return parts.map(quotePart).join('.');
}

/** Split a canonical name back into its parts (the inverse of formatName). */
export function parseName(text: string): string[] {
  const parts: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      let part = '';
      i++;
      while (i < text.length) {
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += text[i++];
      }
      parts.push(part);
    } else {
      const end = text.indexOf('.', i);
      parts.push(text.slice(i, end < 0 ? text.length : end));
      i = end < 0 ? text.length : end;
    }
    if (text[i] === '.') i++;
  }
  return parts;
}

/** Truncate to 63 bytes of UTF-8 without splitting a character, as the server does. */
export function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name, 'utf8') <= MAX_IDENTIFIER_BYTES) return name;
  let out = '';
  let bytes = 0;
  for (const ch of name) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > MAX_IDENTIFIER_BYTES) break;
    out += ch;
    bytes += size;
  }
  return out;
}

/** ASCII-only down-casing: what the server does to unquoted identifiers in UTF-8 databases. */
export function downcaseIdentifier(name: string): string {
  return name.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/**
 * A list of identifiers written as one string (`"$user", public`, a setting's value): the server's
 * SplitIdentifierString. Unquoted names are down-cased and truncated; quoted ones keep their case.
 * Returns undefined when the server would reject the text.
 */
export function splitIdentifierList(text: string): string[] | undefined {
  const cached = splitCache.get(text);
  if (cached !== undefined || splitCache.has(text)) return cached;
  if (splitCache.size > 1000) splitCache.clear();
  const result = splitIdentifiers(text);
  splitCache.set(text, result);
  return result;
}

/** search_path values repeat: split each once. */
const splitCache = new Map<string, string[] | undefined>();

/**
 * A relation name written as a string (`'public.orders_id_seq'::regclass`): the server's
 * stringToQualifiedNameList. Undefined when the server would reject the text.
 */
export function splitQualifiedName(text: string): string[] | undefined {
  const parts = splitIdentifiers(text, '.');
  return parts && parts.length >= 1 && parts.length <= 3 ? parts : undefined;
}

function splitIdentifiers(text: string, separator = ','): string[] | undefined {
  const names: string[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  skipSpace();
  if (i >= text.length) return names;
  for (;;) {
    let name: string;
    if (text[i] === '"') {
      name = '';
      i++;
      for (;;) {
        if (i >= text.length) return undefined; // unterminated quote
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        name += text[i++];
      }
      i++;
      if (name === '') return undefined; // "" is not a name
    } else {
      const start = i;
      while (i < text.length && text[i] !== separator && !/\s/.test(text[i]!)) i++;
      if (i === start) return undefined;
      name = downcaseIdentifier(text.slice(start, i));
    }
    names.push(truncateIdentifier(name));
    skipSpace();
    if (i >= text.length) return names;
    if (text[i] !== separator) return undefined;
    i++;
    skipSpace();
  }
}

/** The string form of a list of identifiers, as SHOW prints search_path (`"$user", public`). */
export function joinIdentifierList(names: readonly string[]): string {
  return names.map((n) => (PLAIN.test(n) ? n : quoteIdentifier(n))).join(', ');
}

// ---- references: what the classifier found, before name resolution --------------------------------

/**
 * A relation as a statement names it. `creates`: the statement creates it (CREATE TABLE, SELECT INTO,
 * CREATE VIEW ...), so an unqualified name lands in the creation schema rather than being looked up.
 * `temp`: CREATE TEMP ... (the session's temporary schema).
 */
export interface RelationRef {
  schema?: string;
  name: string;
  creates?: boolean;
  temp?: boolean;
}

/** A function call as written: its name and how many arguments it is given. */
export interface FunctionRef {
  schema?: string;
  name: string;
  args: number;
}

/*
 * References travel through the per-session prepared-statement tracker as strings (it copies a prepared
 * statement's relations and functions into each EXECUTE), so they have a string form:
 * `[+|~]part(.part)` for relations (`+` creates, `~` creates a temporary one) and `part(.part)/n` for
 * functions. Name resolution turns them into resolved names before anything else sees them.
 */
export function encodeRelationRef(ref: RelationRef): string {
  const prefix = ref.temp ? '~' : ref.creates ? '+' : '';
  return prefix + formatName(ref.schema === undefined ? [ref.name] : [ref.schema, ref.name]);
}

export function decodeRelationRef(text: string): RelationRef {
  const marker = text[0];
  const body = marker === '+' || marker === '~' ? text.slice(1) : text;
  const parts = parseName(body);
  const ref: RelationRef = { name: parts[parts.length - 1] ?? '' };
  if (parts.length > 1) ref.schema = parts[parts.length - 2];
  if (marker === '+' || marker === '~') ref.creates = true;
  if (marker === '~') ref.temp = true;
  return ref;
}

export function encodeFunctionRef(ref: FunctionRef): string {
  return `${formatName(ref.schema === undefined ? [ref.name] : [ref.schema, ref.name])}/${ref.args}`;
}

export function decodeFunctionRef(text: string): FunctionRef {
  const slash = text.lastIndexOf('/');
  const args = slash < 0 ? Number.NaN : Number(text.slice(slash + 1));
  const parts = parseName(slash < 0 ? text : text.slice(0, slash));
  const ref: FunctionRef = { name: parts[parts.length - 1] ?? '', args: Number.isInteger(args) ? args : -1 };
  if (parts.length > 1) ref.schema = parts[parts.length - 2];
  return ref;
}
