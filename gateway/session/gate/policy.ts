/**
 * Check: policy. The decision for a message depends only on its classification and the identity's
 * grants, so it is cached per session by text and grants (the policy epoch: the configuration is fixed
 * for the process, grants change). A prepared statement's Parse and its Executes share one entry.
 */
import type { Classification } from '../../../src/shared/statement.js';
import type { SessionInfo } from '../../contracts/session.js';
import type { MessageDecision, PolicyEngine } from '../../policy/engine.js';
import { LruCache } from '../../sql/lru.js';

export class PolicyCheck {
  private readonly cache = new LruCache<string, MessageDecision>(512);

  constructor(
    private readonly engine: PolicyEngine,
    private readonly info: SessionInfo,
  ) {}

  decide(classification: Classification, grants: readonly string[], cacheKey?: string): MessageDecision {
    const key = cacheKey === undefined ? undefined : `${grants.join(',')}\0${cacheKey}`;
    if (key !== undefined) {
      const hit = this.cache.get(key);
      if (hit) return hit;
    }
    const decided = this.engine.decideAll(this.info.identity, this.info.connection.name, classification, {
      grants,
    });
    if (key !== undefined && key.length <= 64 * 1024) this.cache.set(key, decided);
    return decided;
  }
}
