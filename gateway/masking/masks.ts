/**
 * The masks, as pure functions over one value, and their encoding on the wire.
 *
 * A mask turns a clear string into a masked string (or SQL NULL). On the wire a value is either text
 * (format 0) or binary (format 1) of its column's type. For string types (text, varchar, bpchar, name,
 * char, unknown) the binary form is the UTF-8 bytes, so both formats carry the masked string; json is
 * text in both formats and jsonb binary is a version byte 1 then the text, so a masked json value is a
 * JSON string ("****"). Every other type (numbers, dates, uuid, bytea, arrays, records, or a type we do
 * not know) cannot hold "****": a masked value of such a column becomes SQL NULL, in both formats, so a
 * client that parses the type never chokes and never sees a clear value.
 */
import { createHmac } from 'node:crypto';

export type MaskName = 'redact' | 'partial' | 'email-domain' | 'token' | 'null';

/**
 * How much each mask reveals, least first. When several rules apply to one value the one that reveals
 * least wins. `redact` keeps only "there was a value"; `null` hides even that but is listed after redact
 * because it can be confused with a real NULL; `token` reveals equality; `email-domain` the domain;
 * `partial` a few characters.
 */
export const MASK_STRICTNESS: readonly MaskName[] = ['redact', 'null', 'token', 'email-domain', 'partial'];

export function stricterMask(a: MaskName, b: MaskName): MaskName {
  return MASK_STRICTNESS.indexOf(a) <= MASK_STRICTNESS.indexOf(b) ? a : b;
}

export const REDACTED = '****';

/** The masks' own state: the HMAC key of `token`. */
export interface MaskContext {
  tokenKey: Buffer;
}

/** Mask one clear string. null = SQL NULL. */
export function maskString(value: string, mask: MaskName, ctx: MaskContext): string | null {
  switch (mask) {
    case 'null':
      return null;
    case 'redact':
      return REDACTED;
    case 'partial':
      return partial(value);
    case 'email-domain':
      return emailDomain(value);
    case 'token':
      return token(value, ctx.tokenKey);
  }
}

/**
 * PAN (13–19 digits, spaces or dashes allowed): the first 6 and the last 4 digits stay, as PCI DSS 3.4
 * allows. Anything else: the last 4 characters stay when the value has at least 8 (so at most half is
 * shown), otherwise everything is hidden.
 */
export function partial(value: string): string {
  const digits = value.replace(/[ -]/g, '');
  if (/^\d{13,19}$/.test(digits)) {
    return `${digits.slice(0, 6)}${'*'.repeat(digits.length - 10)}${digits.slice(-4)}`;
  }
  const chars = [...value];
  if (chars.length < 8) return REDACTED;
  return `${'*'.repeat(chars.length - 4)}${chars.slice(-4).join('')}`;
}

/** `ada@example.com` → `****@example.com`; a value that is not an email is redacted. */
export function emailDomain(value: string): string {
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1 || /\s/.test(value)) return REDACTED;
  return `${REDACTED}@${value.slice(at + 1)}`;
}

/** Deterministic: the same clear value gives the same token everywhere (joins and GROUP BY still work). */
export function token(value: string, key: Buffer): string {
  return `tok_${createHmac('sha256', key).update(value, 'utf8').digest('base64url').slice(0, 22)}`;
}

/** Copy bytes; a plain loop for short runs (Buffer#copy's checks cost more than the copy itself). */
export function copyBytes(src: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const n = to - from;
  if (n > 48) return src.copy(dst, at, from, to);
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return n;
}

function writeRedacted(out: Buffer, at: number): number {
  out[at] = 42;
  out[at + 1] = 42;
  out[at + 2] = 42;
  out[at + 3] = 42;
  return 4;
}

/**
 * The hot path: mask an ASCII string value straight from the DataRow's bytes into `out` at `at`,
 * without strings. Returns the bytes written, or -1 when the value needs the string path (non-ASCII
 * text for partial/email-domain, and token). Same results as maskString for ASCII input.
 */
export function maskBytes(
  src: Buffer,
  start: number,
  length: number,
  mask: MaskName,
  out: Buffer,
  at: number,
): number {
  const end = start + length;
  if (mask === 'redact') return writeRedacted(out, at);
  if (mask === 'partial') {
    let digits = 0;
    let other = false;
    for (let p = start; p < end; p++) {
      const b = src[p]!;
      if (b >= 48 && b <= 57) digits++;
      else if (b !== 32 && b !== 45) {
        if (b >= 0x80) return -1;
        other = true;
      }
    }
    if (!other && digits >= 13 && digits <= 19) {
      // PAN: first 6 digits, stars, last 4 digits (separators dropped).
      let seen = 0;
      let w = at;
      for (let p = start; p < end; p++) {
        const b = src[p]!;
        if (b < 48 || b > 57) continue;
        out[w++] = seen < 6 || seen >= digits - 4 ? b : 42;
        seen++;
      }
      return w - at;
    }
    if (length < 8) return writeRedacted(out, at);
    for (let w = at; w < at + length - 4; w++) out[w] = 42;
    copyBytes(src, end - 4, end, out, at + length - 4);
    return length;
  }
  if (mask === 'email-domain') {
    let atSign = -1;
    for (let p = start; p < end; p++) {
      const b = src[p]!;
      if (b >= 0x80) return -1;
      if (b === 32 || (b >= 9 && b <= 13)) return writeRedacted(out, at);
      if (b === 64) atSign = p;
    }
    if (atSign <= start || atSign === end - 1) return writeRedacted(out, at);
    const n = writeRedacted(out, at);
    return n + copyBytes(src, atSign, end, out, at + n);
  }
  return -1;
}

// ---- types on the wire --------------------------------------------------------------------------

/** Types whose text and binary forms are both the UTF-8 string. */
const STRING_TYPES = new Set([25, 1043, 1042, 19, 18, 705]);
const JSON_TYPE = 114;
const JSONB_TYPE = 3802;

export type ValueKind = 'string' | 'json' | 'jsonb' | 'other';

export function valueKind(typeOid: number | undefined): ValueKind {
  if (typeOid === undefined) return 'other';
  if (STRING_TYPES.has(typeOid)) return 'string';
  if (typeOid === JSON_TYPE) return 'json';
  if (typeOid === JSONB_TYPE) return 'jsonb';
  return 'other';
}

/** Whether values of this kind can carry a masked string at all (otherwise they become NULL). */
export function canHoldString(kind: ValueKind): boolean {
  return kind !== 'other';
}

/** The clear value as a string, for the masks (json/jsonb: the JSON text). */
export function decodeValue(value: Buffer, format: number, kind: ValueKind): string {
  if (kind === 'jsonb' && format === 1) return value.toString('utf8', 1);
  return value.toString('utf8');
}

/**
 * The wire bytes of a masked value for this column, or null for SQL NULL. `masked` is the masked
 * string (or null). Types that cannot hold it give NULL.
 */
export function encodeMasked(masked: string | null, format: number, kind: ValueKind): Buffer | null {
  if (masked === null) return null;
  switch (kind) {
    case 'string':
      return Buffer.from(masked, 'utf8');
    case 'json':
      return Buffer.from(JSON.stringify(masked), 'utf8');
    case 'jsonb':
      return format === 1
        ? Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify(masked), 'utf8')])
        : Buffer.from(JSON.stringify(masked), 'utf8');
    default:
      return null;
  }
}
