/** A statement's shape: the same query with other constants has the same fingerprint. */
import { createHash } from 'node:crypto';

/** Keys that say where, not what. */
const POSITION_KEYS = new Set(['location', 'stmt_location', 'stmt_len']);

/** SHA-256 (hex, first 16 chars) of the parse tree with constants and locations removed. */
export function fingerprintOf(statementNode: unknown): string {
  const shape = JSON.stringify(statementNode, (key, value) => {
    if (POSITION_KEYS.has(key)) return undefined;
    if (key === 'A_Const') return '?';
    return value;
  });
  return createHash('sha256')
    .update(shape ?? '')
    .digest('hex')
    .slice(0, 16);
}
