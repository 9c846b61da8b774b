/**
 * The audit log against someone who can write the store but holds no signing key (issue 12), and against
 * replicas disappearing (issue 16) — on both store backends, with the gateway's real log, writer thread
 * and verifier:
 *
 * - a signed record edited, the chain re-hashed, an own key planted in signing_keys and the checkpoints
 *   replaced: verification fails online (running or restarted gateway) and offline with the pinned key;
 * - records newer than the last checkpoint edited: the gateway refuses to chain onto them (alarm) and
 *   the offline verification pinned to the real key fails;
 * - checkpoints deleted: verification against a witness fails;
 * - a whole replica chain deleted: verification fails naming it;
 * - a store written by the single-chain version, migrated, still verifies, and its chain stays protected.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { journalPath } from '../../gateway/audit/chain.js';
import { loadOrCreateSigningKey, type SigningKey, signCheckpoint } from '../../gateway/audit/checkpoint.js';
import { exportJsonl } from '../../gateway/audit/export.js';
import { type Alarm, AuditWriteError, createAuditLog } from '../../gateway/audit/log.js';
import { rotateKey } from '../../gateway/audit/rotation.js';
import { fileSink, startSinks } from '../../gateway/audit/sinks.js';
import { loadTrustedKeys } from '../../gateway/audit/trusted-keys.js';
import { verifyStoredLog } from '../../gateway/audit/verify.js';
import type { SqlDriver } from '../../gateway/store/driver.js';
import { openStore, type StoreConfig } from '../../gateway/store/index.js';
import { MIGRATIONS, migrate } from '../../gateway/store/migrations.js';
import { openPostgresDriver } from '../../gateway/store/postgres.js';
import { openSqliteDriver } from '../../gateway/store/sqlite.js';
import type { Store } from '../../gateway/store/types.js';
import type { AuditRecord, AuditRecordInput, TrustedKey } from '../../src/shared/audit.js';
import { GENESIS_HASH } from '../../src/shared/audit.js';
import {
  canonicalJson,
  keyIdOf,
  recordContent,
  recordHash,
  verifyChain,
} from '../../src/shared/audit-chain.js';
import { parseExport, readWitness } from '../../src/shared/audit-export.js';
import { configSchema } from '../../src/shared/config/schema.js';
import { type PgServer, startPostgres } from '../harness/postgres.js';

const tempDirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-trust-'));
  tempDirs.push(dir);
  return dir;
};
let pg: PgServer | undefined;
let databases = 0;
afterAll(() => {
  pg?.stop();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface Backend {
  name: string;
  fresh(): Promise<StoreConfig>;
  driver(config: StoreConfig): SqlDriver;
}
const backends: Backend[] = [
  {
    name: 'sqlite',
    fresh: async () => ({ path: tempDir() }),
    driver: (config) => openSqliteDriver((config as { path: string }).path),
  },
  {
    name: 'postgres',
    fresh: async () => {
      pg ??= await startPostgres();
      const db = `hoop_trust_${++databases}`;
      pg.psql(`CREATE DATABASE ${db}`);
      return { url: pg.url(db) };
    },
    driver: (config) => openPostgresDriver((config as { url: string }).url),
  },
];

const statement = (i: number, session = 's-trust'): AuditRecordInput => ({
  type: 'statement',
  identity: { issuer: 'https://idp.example.com', subject: 'alice', groups: ['engineering'], kind: 'human' },
  connection: 'prod-db',
  session,
  data: { statement_id: `${session}-${i}`, text: `select ${i}`, decision: 'allow' },
});

function makeKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(publicKeyPem), privateKey, publicKeyPem };
}
const pinned = (key: SigningKey): TrustedKey[] => [{ key_id: key.keyId, public_key: key.publicKeyPem }];

describe.each(backends)('audit trust and replicas: $name', (backend) => {
  /** A fresh store, its data directory, its key, and raw SQL on it (the attacker's access). */
  async function setup() {
    const config = await backend.fresh();
    const dataDir = 'path' in config ? config.path : tempDir();
    const store = await openStore(config, { dataDir });
    const key = loadOrCreateSigningKey({ dataDir: store.dataDir });
    const raw = backend.driver(config);
    const alarms: Alarm[] = [];
    const log = (replica = 'gw', options: { every?: number; adopt?: boolean; on?: Store } = {}) =>
      createAuditLog(options.on ?? store, {
        replica,
        signingKey: key,
        checkpoint: { every: options.every ?? 10, intervalMs: 0 },
        onForeignHead: options.adopt ? 'adopt' : 'refuse',
        onAlarm: (a) => alarms.push(a),
      });
    const cleanup = async () => {
      await raw.close();
      await store.close();
    };
    return { config, dataDir, store, key, raw, alarms, log, cleanup };
  }

  /** Rewrite a chain from `fromSeq` on (editing that record) and re-hash the rest, as a forger without the key would. */
  async function forge(raw: SqlDriver, chain: string, fromSeq: number, edit: (r: AuditRecord) => void) {
    const rows = await raw.query<{ record: string }>(
      'SELECT record FROM chain_records WHERE chain = ? AND seq >= ? ORDER BY seq',
      [chain, fromSeq - 1],
    );
    const records = rows.map((r) => JSON.parse(r.record) as AuditRecord);
    let prev = fromSeq === 1 ? GENESIS_HASH : records.shift()!.hash;
    edit(records[0]!);
    for (const r of records) {
      r.prev = prev;
      r.hash = recordHash(prev, recordContent(r));
      prev = r.hash;
      await raw.run('UPDATE chain_records SET record = ?, hash = ? WHERE chain = ? AND seq = ?', [
        canonicalJson(r),
        r.hash,
        chain,
        r.seq,
      ]);
    }
    return records;
  }

  async function exported(store: Store): Promise<ReturnType<typeof parseExport>> {
    let text = '';
    for await (const chunk of exportJsonl(store, undefined, {})) text += chunk;
    return parseExport(text);
  }

  it('a signed record edited, re-hashed, own key planted, checkpoints replaced: verify fails online and offline', async () => {
    const t = await setup();
    const gw = await t.log();
    for (let i = 1; i <= 30; i++) await gw.append(statement(i));
    await gw.seal();
    // The attack, with write access to the store only.
    const forger = makeKey();
    const forged = await forge(t.raw, 'gw', 5, (r) => {
      r.data.text = 'select harmless';
    });
    await t.raw.run('INSERT INTO signing_keys (key_id, public_key, created_at) VALUES (?, ?, ?)', [
      forger.keyId,
      forger.publicKeyPem,
      new Date().toISOString(),
    ]);
    await t.raw.run("DELETE FROM chain_checkpoints WHERE chain = 'gw'");
    for (const r of forged.filter((x) => x.seq % 10 === 0))
      await t.store.addCheckpoint(signCheckpoint(forger, { chain: 'gw', seq: r.seq, hash: r.hash }));

    // Online, the running gateway: it signs only the head it wrote, which no longer matches.
    const online = await verifyStoredLog(t.store, gw, { trustedKeys: pinned(t.key), maxUnsealedMs: 120_000 });
    expect(online).toMatchObject({ ok: false, chain: 'gw' });
    expect(t.alarms.at(-1)).toMatchObject({ chain: 'gw', written: { seq: 30 }, found: { seq: 30 } });
    await gw.close();

    // A restarted gateway: its head journal does not vouch for the store's head: alarm, appends refused.
    const again = await t.log();
    await expect(again.append(statement(31))).rejects.toBeInstanceOf(AuditWriteError);
    expect(again.alarm?.action).toBe('refuse');
    expect(await verifyStoredLog(t.store, again, { trustedKeys: pinned(t.key) })).toMatchObject({
      ok: false,
      chain: 'gw',
    });
    await again.close();

    // Offline, an export checked with the real public key pinned.
    const file = await exported(t.store);
    expect(
      verifyChain(file.records, file.checkpoints, { trustedKeys: pinned(t.key), complete: true }),
    ).toMatchObject({
      ok: false,
      chain: 'gw',
    });
    // (Trusting the keys the file carries — the planted one among them — is exactly what is no longer done.)
    await t.cleanup();
  });

  it('records newer than the last checkpoint edited: the gateway refuses to chain onto them, offline verify fails', async () => {
    const t = await setup();
    const gw = await t.log('gw', { every: 1000 });
    for (let i = 1; i <= 5; i++) await gw.append(statement(i));
    await gw.seal();
    for (let i = 6; i <= 10; i++) await gw.append(statement(i));
    await forge(t.raw, 'gw', 8, (r) => {
      r.data.decision = 'deny';
    });
    await expect(gw.append(statement(11))).rejects.toThrow(
      /audit log cannot be written: .*refusing to chain/,
    );
    expect(gw.alarm).toMatchObject({ action: 'refuse', written: { seq: 10 }, found: { seq: 10 } });
    // A statement waiting for its record is refused; nothing was chained onto the forgery.
    expect(await t.store.chainHead('gw')).toMatchObject({ seq: 10 });
    const file = await exported(t.store);
    const offline = verifyChain(file.records, file.checkpoints, {
      trustedKeys: pinned(t.key),
      complete: true,
    });
    expect(offline).toMatchObject({ ok: false, chain: 'gw' });
    expect(offline.ok || offline.reason).toMatch(/alarm|rewritten|unsealed/);
    await gw.close();
    await t.cleanup();
  });

  it('with audit.on_foreign_head: adopt, the gateway goes on after an audit.alarm record, and verify still fails', async () => {
    const t = await setup();
    const gw = await t.log('gw', { every: 1000, adopt: true });
    for (let i = 1; i <= 4; i++) await gw.append(statement(i));
    await forge(t.raw, 'gw', 3, (r) => {
      r.data.text = 'select adopted';
    });
    const next = await gw.append(statement(5));
    expect(next.seq).toBe(6);
    const [alarm] = await t.store.listRecords({ chain: 'gw', afterSeq: 4, limit: 1 });
    expect(alarm).toMatchObject({
      type: 'audit.alarm',
      data: { reason: 'foreign_head', written: { seq: 4 } },
    });
    expect(await verifyStoredLog(t.store, gw, { trustedKeys: pinned(t.key) })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^alarm/),
    });
    await gw.close();
    await t.cleanup();
  });

  it('after a kill, the head journal vouches for the unsealed tail; without it (or changed) the start alarms', async () => {
    const t = await setup();
    // No signing key: nothing is ever sealed, so only the journal can vouch for the head.
    const plain = (replica: string) => createAuditLog(t.store, { replica, onAlarm: (a) => t.alarms.push(a) });
    const first = await plain('gw');
    for (let i = 1; i <= 3; i++) await first.append(statement(i));
    await first.close();
    const second = await plain('gw');
    expect((await second.append(statement(4))).seq).toBe(4);
    expect(second.alarm).toBeUndefined();
    await second.close();
    unlinkSync(journalPath(t.store.dataDir, 'gw'));
    const third = await plain('gw');
    expect(third.alarm?.message).toMatch(/no head journal/);
    await expect(third.append(statement(5))).rejects.toBeInstanceOf(AuditWriteError);
    await third.close();
    await t.cleanup();
  });

  // Found by a helper's probe: with a checkpoint covering the shortened head, a start trusted it.
  it('the newest records deleted back to an older checkpoint (or all of them): the head journal finds it out at start', async () => {
    for (const keep of [5, 0]) {
      const t = await setup();
      const gw = await t.log('gw', { every: 1000 });
      for (let i = 1; i <= 5; i++) await gw.append(statement(i));
      await gw.seal();
      for (let i = 6; i <= 12; i++) await gw.append(statement(i));
      await gw.seal();
      await gw.close();
      // With write access to the store only, while the gateway is down.
      await t.raw.run(`DELETE FROM chain_records WHERE chain = 'gw' AND seq > ${keep}`);
      await t.raw.run(`DELETE FROM chain_checkpoints WHERE chain = 'gw' AND seq > ${keep}`);
      const again = await t.log('gw', { every: 1000 });
      expect(again.alarm?.action, `records after ${keep} deleted`).toBe('refuse');
      expect(again.alarm?.message).toMatch(/journal/);
      await expect(again.append(statement(13))).rejects.toBeInstanceOf(AuditWriteError);
      await again.close();
      await t.cleanup();
    }
  });

  it('deleting checkpoints from the store is found out against a witness', async () => {
    const t = await setup();
    const gw = await t.log();
    const witnessFile = join(tempDir(), 'witness.jsonl');
    const sinks = startSinks(t.store, gw, [fileSink(witnessFile)], { pollMs: 20 });
    for (let i = 1; i <= 35; i++) await gw.append(statement(i));
    await gw.seal();
    await sinks.caughtUp();
    await sinks.stop();
    const witness = await readWitness(readFileSync(witnessFile, 'utf8').split('\n'));
    expect(witness.length).toBeGreaterThanOrEqual(2);
    expect(await verifyStoredLog(t.store, undefined, { trustedKeys: pinned(t.key), witness })).toMatchObject({
      ok: true,
    });
    // Deleting one (the newest covers the records anyway, so without a witness nothing would notice).
    const gone = witness[0]!.seq;
    await t.raw.run("DELETE FROM chain_checkpoints WHERE chain = 'gw' AND seq = ?", [gone]);
    expect(await verifyStoredLog(t.store, undefined, { trustedKeys: pinned(t.key) })).toMatchObject({
      ok: true,
    });
    expect(await verifyStoredLog(t.store, undefined, { trustedKeys: pinned(t.key), witness })).toMatchObject({
      ok: false,
      chain: 'gw',
      seq: gone,
      reason: expect.stringMatching(/in the witness but not in the log/),
    });
    await gw.close();
    await t.cleanup();
  });

  it("a replica's whole chain deleted: verification fails naming it", async () => {
    const t = await setup();
    const other = await openStore(t.config, { dataDir: t.dataDir });
    const a = await t.log('gw-a');
    const b = await t.log('gw-b', { on: other });
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append(statement(i, `s-${i % 2}`))),
    );
    await b.seal();
    await a.seal();
    expect(await verifyStoredLog(t.store, a, { trustedKeys: pinned(t.key) })).toMatchObject({ ok: true });
    await b.close();
    await t.raw.run("DELETE FROM chain_records WHERE chain = 'gw-b'");
    await t.raw.run("DELETE FROM chain_checkpoints WHERE chain = 'gw-b'");
    await t.raw.run("DELETE FROM audit_chains WHERE chain = 'gw-b'");
    expect(await verifyStoredLog(t.store, a, { trustedKeys: pinned(t.key) })).toMatchObject({
      ok: false,
      chain: 'gw-b',
      reason: expect.stringMatching(/chain gw-b is missing/),
    });
    await a.close();
    await other.close();
    await t.cleanup();
  });

  it('rotates the signing key as an operator action: sealed before, recorded, the old key kept trusted from disk', async () => {
    const t = await setup();
    const config = configSchema.parse({
      listen: { insecure_loopback: true },
      identity: { issuers: [{ issuer: 'https://idp.example.com', audience: 'gw' }] },
      replica: { id: 'gw' },
    });
    const gw = await t.log('gw', { every: 1000 });
    for (let i = 1; i <= 7; i++) await gw.append(statement(i));
    await gw.close();
    const rotation = await rotateKey(t.store, config);
    expect(rotation).toMatchObject({ replica: 'gw', chain: 'gw', old: { key_id: t.key.keyId } });
    expect(rotation.new.key_id).not.toBe(t.key.keyId);
    expect(existsSync(join(t.store.dataDir, rotation.retiredFile))).toBe(true);
    const [record] = await t.store.listRecords({ chain: 'gw', afterSeq: 7 });
    expect(record).toMatchObject({
      type: 'audit.key_rotated',
      data: {
        old_key_id: t.key.keyId,
        new_key_id: rotation.new.key_id,
        old_fingerprint: rotation.old.fingerprint,
      },
    });
    const newKey = loadOrCreateSigningKey({ dataDir: t.store.dataDir });
    const trusted = loadTrustedKeys({ signingKey: newKey, dataDir: t.store.dataDir });
    expect(trusted.map((k) => k.key_id).sort()).toEqual([t.key.keyId, newKey.keyId].sort());
    const result = await verifyStoredLog(t.store, undefined, { trustedKeys: trusted });
    expect(result).toMatchObject({ ok: true });
    // The old key can no longer sign this chain: a checkpoint by it after the rotation record fails.
    await t.store.addCheckpoint(signCheckpoint(t.key, { chain: 'gw', seq: record!.seq, hash: record!.hash }));
    expect(await verifyStoredLog(t.store, undefined, { trustedKeys: trusted })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/rotated away/),
    });
    await t.cleanup();
  });

  it('a store written by the single-chain version, migrated, still verifies; its chain is then referenced', async () => {
    const config = await backend.fresh();
    const dataDir = 'path' in config ? config.path : tempDir();
    const key = loadOrCreateSigningKey({ dataDir });
    // The previous version's schema and its records, byte for byte as it wrote them: canonical JSON
    // without a chain member, checkpoints signing { seq, hash, time, key_id }.
    const raw = backend.driver(config);
    await migrate(
      raw,
      MIGRATIONS.filter((m) => m.version <= 3),
    );
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 25; seq++) {
      const content = {
        seq,
        time: new Date(Date.now() - 60_000 + seq).toISOString().replace('Z', '123Z'),
        ...statement(seq, 's-old'),
      };
      const record = { ...content, prev, hash: recordHash(prev, content) } as AuditRecord;
      await raw.run(
        'INSERT INTO audit_records (seq, time, type, session, connection, subject, decision, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [
          seq,
          record.time,
          record.type,
          record.session,
          record.connection,
          'alice',
          'allow',
          canonicalJson(record),
        ],
      );
      if (seq % 10 === 0 || seq === 25) {
        const cp = signCheckpoint(key, { seq, hash: record.hash });
        await raw.run(
          'INSERT INTO audit_checkpoints (seq, key_id, hash, time, signature) VALUES (?, ?, ?, ?, ?)',
          [cp.seq, cp.key_id, cp.hash, cp.time, cp.signature],
        );
      }
      prev = record.hash;
    }

    const store = await openStore(config, { dataDir });
    expect(await verifyStoredLog(store, undefined, { trustedKeys: pinned(key) })).toMatchObject({
      ok: true,
      chains: [{ chain: 'legacy', count: 25, first_seq: 1, last_seq: 25 }],
    });
    const log = await createAuditLog(store, {
      replica: 'gw',
      signingKey: key,
      checkpoint: { every: 10, intervalMs: 0 },
    });
    for (let i = 1; i <= 5; i++) await log.append(statement(i, 's-new'));
    await log.seal();
    // The new chain sealed after its first batch already: that checkpoint references the legacy head.
    const own = (await store.listCheckpoints()).filter((cp) => cp.chain === 'gw');
    expect(own[0]?.refs).toEqual([expect.objectContaining({ chain: 'legacy', seq: 25 })]);
    const after = await verifyStoredLog(store, log, { trustedKeys: pinned(key) });
    expect(after.ok && after.chains.map((c) => [c.chain, c.count])).toEqual([
      ['gw', 5],
      ['legacy', 25],
    ]);
    // Sessions and exports read both.
    expect((await store.listSessions()).map((s) => s.id).sort()).toEqual(['s-new', 's-old']);
    const file = await exported(store);
    expect(
      verifyChain(file.records, file.checkpoints, { trustedKeys: pinned(key), complete: true }),
    ).toMatchObject({
      ok: true,
      count: 30,
    });
    // Cutting the old chain short is caught by the new chain's reference to its head.
    await raw.run('DELETE FROM audit_records WHERE seq >= 21');
    await raw.run('DELETE FROM audit_checkpoints WHERE seq >= 21');
    expect(await verifyStoredLog(store, log, { trustedKeys: pinned(key) })).toMatchObject({
      ok: false,
      chain: 'legacy',
      reason: expect.stringMatching(/truncated/),
    });
    await log.close();
    await raw.close();
    await store.close();
  });
});
