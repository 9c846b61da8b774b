/**
 * Value detectors: the second net. Lineage masks what provably comes from a masked column; the
 * detectors look at the values themselves and mask what looks like a card number (with the Luhn
 * check), a US SSN, an email address or a well-known secret, wherever it sits in a string — a notes
 * column, a JSON document, a table no rule names. They run on every string value of a result that
 * lineage left clear, for identities whose policies have a masking rule with `tags`.
 */
import { type MaskContext, type MaskName, maskString } from './masks.js';

export type Tag = 'pan' | 'ssn' | 'email' | 'secret';

/** Luhn checksum over the digits of a string (separators ignored). */
export function luhnValid(text: string): boolean {
  const digits = text.replace(/\D/g, '');
  if (digits.length < 12) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

interface Detector {
  tag: Tag;
  pattern: RegExp;
  accept?: (match: string) => boolean;
}

const DETECTORS: readonly Detector[] = [
  // 13–19 digits, optionally grouped by single spaces or dashes, not part of a longer number.
  { tag: 'pan', pattern: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g, accept: luhnValid },
  { tag: 'ssn', pattern: /(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)/g },
  { tag: 'email', pattern: /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g },
  {
    tag: 'secret',
    pattern: new RegExp(
      [
        'AKIA[0-9A-Z]{16}', // AWS access key id
        'gh[pousr]_[A-Za-z0-9]{36,}', // GitHub tokens
        'github_pat_[A-Za-z0-9_]{40,}',
        'xox[abposr]-[A-Za-z0-9-]{10,}', // Slack
        '(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}', // Stripe
        'AIza[0-9A-Za-z_-]{35}', // Google API key
        'glpat-[A-Za-z0-9_-]{20,}', // GitLab
        'eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}', // JWT
        '-----BEGIN [A-Z ]*PRIVATE KEY-----[\\s\\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)',
      ].join('|'),
      'g',
    ),
  },
];

/** Which mask each tag triggers, from the identity's rules. */
export type TagMasks = ReadonlyMap<Tag, { mask: MaskName; rule: string }>;

export interface Detection {
  text: string;
  /** Null when a hit's mask is `null`: the whole value becomes NULL. */
  nulled: boolean;
  hits: { tag: Tag; rule: string }[];
}

/** Cheap pre-check: none of the detectors can match a string without a digit, an @ or a known prefix. */
const MAYBE = /[\d@]|AKIA|gh[pousr]_|github_pat_|xox|_live_|_test_|AIza|glpat-|eyJ|-----BEGIN/;

/**
 * Mask every detected value inside `text` with its tag's mask. Returns undefined when nothing was
 * found (the value passes unchanged).
 */
export function detectAndMask(text: string, tags: TagMasks, ctx: MaskContext): Detection | undefined {
  if (tags.size === 0 || !MAYBE.test(text)) return undefined;
  let out = text;
  const hits: { tag: Tag; rule: string }[] = [];
  let nulled = false;
  for (const detector of DETECTORS) {
    const rule = tags.get(detector.tag);
    if (!rule) continue;
    detector.pattern.lastIndex = 0;
    out = out.replace(detector.pattern, (match) => {
      if (detector.accept && !detector.accept(match)) return match;
      hits.push({ tag: detector.tag, rule: rule.rule });
      const masked = maskString(match, rule.mask, ctx);
      if (masked === null) {
        nulled = true;
        return '';
      }
      return masked;
    });
  }
  return hits.length > 0 ? { text: out, nulled, hits } : undefined;
}
