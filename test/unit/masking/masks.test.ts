import { describe, expect, it } from 'vitest';
import { detectAndMask, luhnValid } from '../../../gateway/masking/detectors.js';
import {
  emailDomain,
  encodeMasked,
  maskString,
  partial,
  stricterMask,
  token,
  valueKind,
} from '../../../gateway/masking/masks.js';

const ctx = { tokenKey: Buffer.from('k'.repeat(32)) };

describe('masks', () => {
  it('partial keeps the first 6 and last 4 digits of a PAN, the last 4 of anything else', () => {
    expect(partial('4111111111111111')).toBe('411111******1111');
    expect(partial('4111 1111 1111 1111')).toBe('411111******1111');
    expect(partial('378282246310005')).toBe('378282*****0005');
    expect(partial('000-12-3456')).toBe('*******3456');
    expect(partial('short')).toBe('****');
    expect(partial('')).toBe('****');
    expect(partial('héllo wörld')).toBe('*******örld');
  });

  it('email-domain keeps the domain; a non-email is redacted', () => {
    expect(emailDomain('ada@example.com')).toBe('****@example.com');
    expect(emailDomain('not an email')).toBe('****');
    expect(emailDomain('@x')).toBe('****');
    expect(emailDomain('x@')).toBe('****');
  });

  it('token is deterministic per key and differs per value and per key', () => {
    expect(token('a', ctx.tokenKey)).toBe(token('a', ctx.tokenKey));
    expect(token('a', ctx.tokenKey)).not.toBe(token('b', ctx.tokenKey));
    expect(token('a', ctx.tokenKey)).not.toBe(token('a', Buffer.from('other')));
    expect(token('a', ctx.tokenKey)).toMatch(/^tok_[A-Za-z0-9_-]{22}$/);
  });

  it('redact and null', () => {
    expect(maskString('secret', 'redact', ctx)).toBe('****');
    expect(maskString('secret', 'null', ctx)).toBeNull();
  });

  it('orders masks by what they reveal', () => {
    expect(stricterMask('partial', 'redact')).toBe('redact');
    expect(stricterMask('token', 'partial')).toBe('token');
    expect(stricterMask('email-domain', 'partial')).toBe('email-domain');
    expect(stricterMask('null', 'token')).toBe('null');
  });

  it('encodes masked values per type: strings in both formats, json as a JSON string, jsonb binary with its version byte, others NULL', () => {
    expect(encodeMasked('****', 0, valueKind(25))?.toString()).toBe('****');
    expect(encodeMasked('****', 1, valueKind(1043))?.toString()).toBe('****');
    expect(encodeMasked('****', 1, valueKind(114))?.toString()).toBe('"****"');
    expect(encodeMasked('****', 1, valueKind(3802))).toEqual(
      Buffer.concat([Buffer.from([1]), Buffer.from('"****"')]),
    );
    expect(encodeMasked('****', 0, valueKind(23))).toBeNull();
    expect(encodeMasked('****', 1, valueKind(undefined))).toBeNull();
  });
});

describe('detectors', () => {
  const tags = new Map([
    ['pan', { mask: 'partial', rule: 'r-pan' }],
    ['ssn', { mask: 'redact', rule: 'r-ssn' }],
    ['email', { mask: 'email-domain', rule: 'r-email' }],
    ['secret', { mask: 'redact', rule: 'r-secret' }],
  ] as const);

  it('checks the Luhn digit', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('378282246310005')).toBe(true);
  });

  it('finds PANs (Luhn-valid only), SSNs, emails and secrets inside text', () => {
    const found = detectAndMask(
      'paid 4111-1111-1111-1111, ssn 123-45-6789, mail a.b@c.io, key AKIAABCDEFGHIJKLMNOP',
      tags,
      ctx,
    );
    expect(found?.text).toBe('paid 411111******1111, ssn ****, mail ****@c.io, key ****');
    expect(found?.hits.map((h) => h.tag).sort()).toEqual(['email', 'pan', 'secret', 'ssn']);
    expect(detectAndMask('order 4111111111111112 shipped', tags, ctx)).toBeUndefined();
    expect(detectAndMask('nothing here', tags, ctx)).toBeUndefined();
  });

  it('only the configured tags', () => {
    const onlySsn = new Map([['ssn', { mask: 'redact', rule: 'r' }]] as const);
    expect(detectAndMask('a@b.io 123-45-6789', onlySsn, ctx)?.text).toBe('a@b.io ****');
  });

  it('finds common secret formats', () => {
    for (const secret of [
      'ghp_abcdefghijklmnopqrstuvwxyz0123456789',
      'xoxb-123456789012-abcdefghij',
      'sk_live_abcdefghijklmnop1234',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlLXZhbHVl',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----',
    ]) {
      expect(detectAndMask(`x ${secret} y`, tags, ctx)?.text, secret).toBe('x **** y');
    }
  });
});
