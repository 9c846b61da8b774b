/**
 * Signatures of a report, with the gateway's Ed25519 audit key: the JSON report is signed over its
 * canonical JSON without `signature`; an HTML or Markdown document is signed over its exact bytes,
 * with the signature in a last-line comment. Verification trusts only keys the caller pins.
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { canonicalJson, keyIdOf } from '../audit-chain.js';
import type { ComplianceReport, ReportSignature } from './types.js';

export interface ReportSigner {
  keyId: string;
  privateKey: KeyObject;
}

/** A public key the verifier trusts (from a PEM the auditor pinned). */
export interface PinnedKey {
  key_id: string;
  public_key: string;
}

export function pinnedKey(pem: string): PinnedKey {
  createPublicKey(pem); // throws on anything but a public key
  return { key_id: keyIdOf(pem), public_key: pem };
}

export function reportPayload(report: ComplianceReport): Buffer {
  const { signature: _signature, ...body } = report;
  return Buffer.from(canonicalJson(body));
}

export function signReport(report: ComplianceReport, signer: ReportSigner): ComplianceReport {
  const { signature: _old, ...body } = report;
  const value = sign(null, reportPayload(body), signer.privateKey).toString('base64');
  return { ...body, signature: { alg: 'Ed25519', key_id: signer.keyId, value } };
}

export type SignatureCheck = { ok: true; key_id: string } | { ok: false; reason: string };

function check(
  payload: Buffer,
  sig: ReportSignature | undefined,
  keys: readonly PinnedKey[],
): SignatureCheck {
  if (sig?.alg !== 'Ed25519' || typeof sig.value !== 'string')
    return { ok: false, reason: 'the report carries no Ed25519 signature' };
  const key = keys.find((k) => k.key_id === sig.key_id);
  if (!key) {
    return {
      ok: false,
      reason: `signed by key ${sig.key_id}, which is not among the pinned keys (${keys.map((k) => k.key_id).join(', ') || 'none'})`,
    };
  }
  try {
    if (verify(null, payload, key.public_key, Buffer.from(sig.value, 'base64')))
      return { ok: true, key_id: key.key_id };
  } catch {
    // a malformed signature is just an invalid one
  }
  return { ok: false, reason: `the signature does not match the content (edited after signing?)` };
}

export function verifyReportSignature(report: ComplianceReport, keys: readonly PinnedKey[]): SignatureCheck {
  return check(reportPayload(report), report.signature, keys);
}

const TRAILER = '<!-- hoop-report-signature ';

/** The document with its signature line appended: `<!-- hoop-report-signature {json} -->`. */
export function signDocument(text: string, signer: ReportSigner): string {
  const body = text.endsWith('\n') ? text : `${text}\n`;
  const value = sign(null, Buffer.from(body, 'utf8'), signer.privateKey).toString('base64');
  const sig: ReportSignature = { alg: 'Ed25519', key_id: signer.keyId, value };
  return `${body}${TRAILER}${JSON.stringify(sig)} -->\n`;
}

/** Check an HTML or Markdown document's signature line over every byte before it. */
export function verifyDocument(text: string, keys: readonly PinnedKey[]): SignatureCheck {
  const at = text.lastIndexOf(`\n${TRAILER}`);
  if (at < 0) return { ok: false, reason: 'no signature line (<!-- hoop-report-signature … -->) at the end' };
  const line = text.slice(at + 1 + TRAILER.length).replace(/\s*-->\s*$/, '');
  let sig: ReportSignature | undefined;
  try {
    sig = JSON.parse(line) as ReportSignature;
  } catch {
    return { ok: false, reason: 'the signature line is malformed' };
  }
  if (
    text
      .slice(at + 1)
      .trimEnd()
      .split('\n').length > 1
  )
    return { ok: false, reason: 'text follows the signature line' };
  return check(Buffer.from(text.slice(0, at + 1), 'utf8'), sig, keys);
}

/** The report JSON embedded in an HTML or Markdown document, or undefined. */
export function embeddedReport(text: string): ComplianceReport | undefined {
  const match =
    /<script type="application\/json" id="hoop-report">([\s\S]*?)<\/script>/.exec(text) ??
    /<!-- hoop-report-json\n([\s\S]*?)\n-->/.exec(text);
  if (!match) return undefined;
  try {
    return JSON.parse(match[1]!) as ComplianceReport;
  } catch {
    return undefined;
  }
}

/** JSON safe inside `<script>` and `<!-- -->`: `<`, `>` and `&` escaped (JSON.parse reads them back). */
export function embeddableJson(report: ComplianceReport): string {
  return JSON.stringify(report).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}
