/**
 * Which chain a replica writes, and whether it may go on writing it.
 *
 * Each replica writes its own hash chain, named by its replica id. A chain another replica closed (its
 * writer stopped heartbeating, see replicas.ts) is never written again: the replica starts the next
 * generation, `<id>~2`, `<id>~3` …
 *
 * A gateway signs only a head it wrote. At start that means: the chain is empty, or its head in the store
 * is one this replica vouches for — covered by one of its trusted checkpoints (a clean stop seals the
 * head), or named by the head journal the writer keeps beside the signing key (after a kill -9: the head
 * it was about to commit or had committed). Anything else is a head it did not write: an alarm.
 */
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TrustedKey } from '../../src/shared/audit.js';
import { LEGACY_CHAIN } from '../../src/shared/audit.js';
import { checkpointSignatureValid } from '../../src/shared/audit-chain.js';
import type { AuditStore, ChainHead } from '../store/types.js';

/** Replica ids: what a chain name starts with; `~` is kept for generations. */
export const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkReplicaId(id: string): string {
  if (!REPLICA_ID.test(id))
    throw new Error(
      `replica id "${id}" must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`,
    );
  if (id === LEGACY_CHAIN)
    throw new Error(`replica id "${LEGACY_CHAIN}" is reserved for the chain before replicas`);
  return id;
}

/** The replica of a chain name (`gw-1~3` → `gw-1`) and its generation (1 when there is no suffix). */
export function parseChain(chain: string): { replica: string; generation: number } {
  const at = chain.lastIndexOf('~');
  if (at < 0) return { replica: chain, generation: 1 };
  return { replica: chain.slice(0, at), generation: Number(chain.slice(at + 1)) || 1 };
}

export const chainName = (replica: string, generation: number): string =>
  generation <= 1 ? replica : `${replica}~${generation}`;

export const journalPath = (dataDir: string, chain: string): string =>
  join(dataDir, `audit-chain-${chain}.head`);

/** What the writer last noted: the head it committed, and (during a commit) the head it was writing. */
interface Journal {
  seq: number;
  hash: string;
  next?: { seq: number; hash: string };
}

function readJournal(path: string | undefined): Journal | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text.trim()) as Journal;
    return typeof parsed.seq === 'number' && typeof parsed.hash === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export interface OpenedChain {
  chain: string;
  /** The head in the store now. */
  found: ChainHead;
  /** The head this replica vouches for (equal to `found` unless `foreign`). */
  head: ChainHead;
  /** Set when the store's head is not one this replica wrote: why. */
  foreign?: string;
  /** The newest seq of this chain a trusted checkpoint of it covers (0: none). */
  signedThrough: number;
  /** The head journal's path; absent when the data directory cannot be written (`noJournal` says why). */
  journal?: string;
  noJournal?: string;
}

/**
 * The journal's path if its directory can be written. A read-only data directory (a container whose
 * configuration directory is a read-only mount) runs without one: a clean stop still seals the head, and
 * a restarted pod with a new name writes a new chain; only a kill -9 under a stable id then alarms.
 */
function usableJournal(dataDir: string, chain: string): { journal?: string; noJournal?: string } {
  const journal = journalPath(dataDir, chain);
  try {
    mkdirSync(dirname(journal), { recursive: true, mode: 0o700 });
    accessSync(dirname(journal), constants.W_OK);
    return { journal };
  } catch (err) {
    return {
      noJournal: `no head journal for audit chain ${chain}: ${dirname(journal)} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); after a kill -9 this replica cannot vouch for its unsealed tail under the same id`,
    };
  }
}

const same = (a: { seq: number; hash: string }, b: { seq: number; hash: string }) =>
  a.seq === b.seq && a.hash === b.hash;

/** Pick the replica's chain (its newest generation unless that was closed) and check its head. */
export async function openChain(
  store: AuditStore,
  options: { replica: string; trustedKeys: readonly TrustedKey[] },
): Promise<OpenedChain> {
  const mine = (await store.listChains()).filter((c) => parseChain(c.chain).replica === options.replica);
  const newest = mine.sort((a, b) => parseChain(b.chain).generation - parseChain(a.chain).generation)[0];
  const chain = !newest
    ? chainName(options.replica, 1)
    : newest.closed_at
      ? chainName(options.replica, parseChain(newest.chain).generation + 1)
      : newest.chain;
  const { journal, noJournal } = usableJournal(store.dataDir, chain);
  const found = await store.chainHead(chain);
  const trusted = new Map(options.trustedKeys.map((k) => [k.key_id, k]));
  const signed = (await store.listCheckpoints({ chain })).filter((cp) => {
    const key = trusted.get(cp.key_id);
    return key !== undefined && !cp.alarm && checkpointSignatureValid(cp, key);
  });
  const signedThrough = Math.max(0, ...signed.map((cp) => cp.seq));
  const opened = { chain, found, head: found, signedThrough, journal, noJournal };
  const noted = readJournal(journal);
  if (noted) {
    // The journal names the head this replica last wrote onto and the one it was writing: the store
    // must show one of them. A checkpoint covering the store's head is not enough — records deleted
    // back to an older checkpoint (or all of them) leave a head that one covers.
    if (same(noted, found) || (noted.next && same(noted.next, found))) return opened;
  } else {
    if (found.seq === 0) return opened;
    if (signed.some((cp) => same(cp, found))) return opened;
  }
  // Not ours: keep the head we can vouch for, so the writer refuses (or adopts, loudly) the rest.
  const lastSigned = signed.sort((a, b) => b.seq - a.seq)[0];
  const head = noted
    ? { seq: noted.seq, hash: noted.hash }
    : lastSigned
      ? { seq: lastSigned.seq, hash: lastSigned.hash }
      : found;
  const foreign = noted
    ? `the store's head of chain ${chain} (seq ${found.seq}) is not the one this replica's journal (${journal ?? 'none'}) says it wrote (seq ${noted.seq})`
    : `the store's head of chain ${chain} (seq ${found.seq}) is covered by no checkpoint of this replica and there is no head journal (${journal ?? noJournal}) to vouch for it`;
  return { ...opened, head: same(head, found) ? { seq: 0, hash: '' } : head, foreign };
}
