/**
 * The dev IdP's memory, kept in a file so that restarting `hoop-gateway --dev` keeps people logged in:
 * an oidc-provider adapter whose sessions, grants, refresh tokens and device codes live in one JSON file
 * (mode 0600) in the dev directory, rewritten whole (temporary file + rename) on every change. Expired
 * entries are dropped when the file is read and written. Dev only: a real IdP has a real database.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Adapter, AdapterPayload } from 'oidc-provider';

interface Entry {
  payload: AdapterPayload;
  /** ms since the epoch; absent = never. */
  expiresAt?: number;
}

/** model name → id → entry */
type State = Record<string, Record<string, Entry>>;

export function fileAdapterFactory(file: string): new (model: string) => Adapter {
  const state = load(file);
  const save = () => {
    prune(state);
    mkdirSync(dirname(file), { recursive: true });
    const temporary = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(temporary, JSON.stringify(state), { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, file);
  };

  return class FileAdapter implements Adapter {
    private readonly entries: Record<string, Entry>;
    constructor(readonly model: string) {
      state[model] ??= {};
      this.entries = state[model];
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      this.entries[id] = { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined };
      save();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      const entry = this.entries[id];
      return entry && !expired(entry) ? entry.payload : undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findWhere((p) => p.userCode === userCode);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findWhere((p) => p.uid === uid);
    }

    async consume(id: string): Promise<void> {
      const entry = this.entries[id];
      if (entry) {
        entry.payload.consumed = Math.floor(Date.now() / 1000);
        save();
      }
    }

    async destroy(id: string): Promise<void> {
      if (id in this.entries) {
        delete this.entries[id];
        save();
      }
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      let changed = false;
      for (const [id, entry] of Object.entries(this.entries)) {
        if (entry.payload.grantId === grantId) {
          delete this.entries[id];
          changed = true;
        }
      }
      if (changed) save();
    }

    private findWhere(match: (payload: AdapterPayload) => boolean): AdapterPayload | undefined {
      for (const entry of Object.values(this.entries)) {
        if (!expired(entry) && match(entry.payload)) return entry.payload;
      }
      return undefined;
    }
  };
}

function expired(entry: Entry): boolean {
  return entry.expiresAt !== undefined && entry.expiresAt <= Date.now();
}

function prune(state: State): void {
  for (const entries of Object.values(state)) {
    for (const [id, entry] of Object.entries(entries)) if (expired(entry)) delete entries[id];
  }
}

function load(file: string): State {
  if (!existsSync(file)) return {};
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as State;
    prune(state);
    return state;
  } catch {
    // A damaged file only costs the dev logins: start empty rather than refuse to start.
    return {};
  }
}
