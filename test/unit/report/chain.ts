/** Test chains: records hashed and checkpoints signed as the gateway would, from short descriptions. */
import { generateKeyPairSync, sign } from 'node:crypto';
import type {
  AuditRecord,
  AuditRecordInput,
  Checkpoint,
  SigningPublicKey,
} from '../../../src/shared/audit.js';
import { GENESIS_HASH } from '../../../src/shared/audit.js';
import { checkpointPayload, keyIdOf, recordHash } from '../../../src/shared/audit-chain.js';
import type { Identity } from '../../../src/shared/identity.js';

export const ALICE: Identity = {
  issuer: 'https://idp.example.com',
  subject: 'alice',
  name: 'alice@example.com',
  groups: ['engineering'],
  kind: 'human',
};
export const RITA: Identity = {
  ...ALICE,
  subject: 'rita',
  name: 'rita@example.com',
  groups: ['db-reviewers'],
};
export const CI: Identity = {
  ...ALICE,
  subject: 'ci-bot',
  name: undefined,
  groups: ['ci-deploy'],
  kind: 'service',
};
export const AUBREY: Identity = {
  ...ALICE,
  subject: 'aubrey',
  name: 'aubrey@example.com',
  groups: ['audit'],
};

export interface TestKey {
  key: SigningPublicKey;
  pem: string;
  privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'];
}

export function testKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    key: { key_id: keyIdOf(pem), public_key: pem, created_at: '2026-01-01T00:00:00.000Z' },
    pem,
    privateKey,
  };
}

/** Records at the given times (µs precision), chained from genesis. */
export function chain(inputs: (AuditRecordInput & { time: string })[]): AuditRecord[] {
  let prev = GENESIS_HASH;
  return inputs.map((input, i) => {
    const content = { ...input, seq: i + 1 };
    const hash = recordHash(prev, content);
    const record = { ...content, prev, hash } as AuditRecord;
    prev = hash;
    return record;
  });
}

export function checkpointOf(record: AuditRecord, k: TestKey, time = record.time): Checkpoint {
  const unsigned = { seq: record.seq, hash: record.hash, time, key_id: k.key.key_id };
  return { ...unsigned, signature: sign(null, checkpointPayload(unsigned), k.privateKey).toString('base64') };
}

/** `2026-03-DDTHH:MM:SS.000000Z` */
export const at = (day: number, hour = 10, minute = 0, second = 0) =>
  `2026-03-${String(day).padStart(2, '0')}T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}.000000Z`;

const base = (identity: Identity, session: string) => ({
  identity,
  source: '10.0.0.5:40000',
  connection: 'prod-db',
  session,
});

export const statement = (
  time: string,
  identity: Identity,
  session: string,
  data: Record<string, unknown>,
): AuditRecordInput & { time: string } => ({
  time,
  type: 'statement',
  ...base(identity, session),
  data: {
    statement_id: `${session}-x`,
    text: 'select 1',
    class: 'read',
    decision: 'allow',
    rule: 'reads',
    ...data,
  },
});

export const started = (time: string, identity: Identity, session: string, client = 'connect') => ({
  time,
  type: 'session.started' as const,
  ...base(identity, session),
  data: { client },
});
