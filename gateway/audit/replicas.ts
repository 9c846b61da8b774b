/**
 * Replicas sharing a store: each heartbeats in the store; the others notice one that went silent.
 *
 * Claiming an id: a replica id is one process at a time. A start finds the id's row; if another process
 * heartbeats under it, the start waits until that one is silent (a restart after kill -9 on another host
 * waits at most `lostAfterMs`; on the same host a dead pid is recognised at once) and refuses if it never is.
 *
 * A lost replica (silent for `lostAfterMs`): exactly one other replica wins the compare-and-set that marks
 * it lost; that one closes its chain (a restart of it begins a new generation), records `replica.lost`
 * with the chain's head as found, signs a checkpoint referencing that head (which covers the chain's
 * unsealed tail), and tells the `onLost` listeners (approvals: withdraw what it held).
 */
import { hostname } from 'node:os';
import type { GatewayConfig } from '../../src/shared/config/schema.js';
import type { AuditStore, ChainHead, ReplicaInfo, ReplicaStore } from '../store/types.js';
import { checkReplicaId } from './chain.js';
import type { AuditLog } from './log.js';

/** replica.id, else HOOP_REPLICA_ID, else `main` (embedded store) or the host name (PostgreSQL store). */
export function replicaIdOf(
  config: Partial<Pick<GatewayConfig, 'replica'>>,
  store: Pick<AuditStore, 'kind'>,
  env = process.env,
): string {
  const explicit = explicitReplicaId(config, env);
  if (explicit) return explicit;
  if (store.kind === 'sqlite') return 'main';
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63);
  return checkReplicaId(host || 'gateway');
}

/** replica.id or HOOP_REPLICA_ID, checked; undefined when the default applies. */
export function explicitReplicaId(
  config: Partial<Pick<GatewayConfig, 'replica'>>,
  env = process.env,
): string | undefined {
  const explicit = config.replica?.id ?? env.HOOP_REPLICA_ID;
  return explicit ? checkReplicaId(explicit) : undefined;
}

/**
 * The default id when another gateway on this host already runs under it (two gateways on one machine
 * and one store, no ids given): the first of `<id>`, `<id>-2`, `<id>-3` … no live process on this host
 * holds. An explicit id is never changed: a clash is the operator's to resolve.
 */
export async function freeDefaultReplicaId(
  store: ReplicaStore,
  base: string,
  instance: string,
): Promise<string> {
  for (let n = 1; n < 100; n++) {
    const id = n === 1 ? base : `${base.slice(0, 60)}-${n}`;
    const row = await store.getReplica(id);
    const takenHere =
      row &&
      !row.stopped_at &&
      !row.lost_at &&
      row.instance !== instance &&
      row.host === hostname() &&
      row.pid !== undefined &&
      pidAlive(row.pid);
    if (!takenHere) return id;
  }
  return base;
}

export interface ReplicaOptions {
  id: string;
  /** This process, among restarts of the same replica. */
  instance: string;
  heartbeatMs: number;
  lostAfterMs: number;
  version?: string;
  onError?: (err: Error) => void;
  /** A warning worth an operator's eye (an id taken over, this replica presumed lost by the others). */
  onWarning?: (message: string) => void;
  now?: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The row says another process is this replica and is alive now. */
function heldByAnother(row: ReplicaInfo | undefined, options: ReplicaOptions, now: number): boolean {
  if (!row || row.stopped_at || row.lost_at || row.instance === options.instance) return false;
  if (now - Date.parse(row.heartbeat_at) >= options.lostAfterMs) return false;
  if (row.host === hostname() && row.pid !== undefined && !pidAlive(row.pid)) return false;
  return true;
}

/** Wait until no other live process holds the id (at most lostAfterMs + a heartbeat), or refuse. */
export async function claimReplicaId(store: ReplicaStore, options: ReplicaOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const deadline = now() + options.lostAfterMs + options.heartbeatMs;
  let row = await store.getReplica(options.id);
  if (heldByAnother(row, options, now())) {
    options.onWarning?.(
      `replica id ${options.id} was heartbeating ${Math.round((now() - Date.parse(row!.heartbeat_at)) / 1000)} s ago (host ${row!.host ?? '?'}, pid ${row!.pid ?? '?'}): waiting for it to go silent`,
    );
  }
  while (heldByAnother(row, options, now())) {
    if (now() > deadline) {
      throw new Error(
        `replica id ${options.id} is in use by a live gateway (host ${row!.host ?? '?'}, pid ${row!.pid ?? '?'}): give each replica its own replica.id (or HOOP_REPLICA_ID)`,
      );
    }
    await sleep(Math.min(options.heartbeatMs, 500));
    row = await store.getReplica(options.id);
  }
}

export interface ReplicaLost {
  replica: ReplicaInfo;
  /** The lost replica's chain head as found. */
  head: ChainHead;
}

export interface RunningReplica {
  readonly id: string;
  readonly instance: string;
  /** Called on the replica that won the right to handle a lost one. */
  onLost(listener: (lost: ReplicaLost) => unknown): void;
  /** One heartbeat and one look for lost replicas, now (the timer does this every heartbeatMs). */
  tick(): Promise<void>;
  /** Stop heartbeating and say so in the store (a clean stop is not a loss). */
  stop(): Promise<void>;
}

export async function startReplica(
  store: ReplicaStore & Pick<AuditStore, 'chainHead' | 'closeChain'>,
  log: Pick<AuditLog, 'chain' | 'append' | 'seal'>,
  options: ReplicaOptions,
): Promise<RunningReplica> {
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => {});
  const listeners: ((lost: ReplicaLost) => unknown)[] = [];
  await store.upsertReplica({
    replica: options.id,
    instance: options.instance,
    chain: log.chain,
    host: hostname(),
    pid: process.pid,
    version: options.version,
    started_at: iso(now()),
    heartbeat_at: iso(now()),
  });

  const handleLost = async (r: ReplicaInfo) => {
    const at = now();
    if (!(await store.markReplicaLost(r.replica, iso(at - options.lostAfterMs), options.id, iso(at)))) return;
    await store.closeChain(r.chain, options.id, iso(at));
    const head = await store.chainHead(r.chain);
    await log.append({
      type: 'replica.lost',
      data: {
        replica: r.replica,
        chain: r.chain,
        head: { seq: head.seq, hash: head.hash },
        last_heartbeat: r.heartbeat_at,
        host: r.host,
      },
    });
    for (const listener of listeners) await listener({ replica: r, head });
    // A checkpoint now references the lost chain's head: its unsealed tail is covered from here on.
    await log.seal(true);
  };

  let ticking: Promise<void> | undefined;
  const tick = (): Promise<void> => {
    ticking ??= (async () => {
      try {
        if (!(await store.heartbeat(options.id, options.instance, iso(now())))) {
          const row = await store.getReplica(options.id);
          if (row && row.instance !== options.instance) {
            options.onWarning?.(
              `replica id ${options.id} was taken over by another process (host ${row.host ?? '?'}, pid ${row.pid ?? '?'}): two gateways must not share a replica id`,
            );
          } else {
            options.onWarning?.(
              `the other replicas presumed this one (${options.id}) lost (no heartbeat for ${options.lostAfterMs} ms): its waiting approvals were withdrawn`,
            );
            await store.upsertReplica({
              ...(row as ReplicaInfo),
              instance: options.instance,
              heartbeat_at: iso(now()),
            });
          }
        }
        for (const r of await store.listSilentReplicas(iso(now() - options.lostAfterMs))) {
          if (r.replica !== options.id) await handleLost(r);
        }
      } catch (err) {
        onError(err as Error);
      } finally {
        ticking = undefined;
      }
    })();
    return ticking;
  };
  const timer = setInterval(() => void tick(), options.heartbeatMs);
  timer.unref();

  return {
    id: options.id,
    instance: options.instance,
    onLost: (listener) => listeners.push(listener),
    tick,
    async stop() {
      clearInterval(timer);
      await ticking;
      await store
        .markReplicaStopped(options.id, options.instance, iso(now()))
        .catch((err: Error) => onError(err));
    },
  };
}
