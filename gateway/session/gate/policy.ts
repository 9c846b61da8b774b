/**
 * Check: policy. The decision for a message depends only on its resolved classification and the
 * identity's grants, so it is cached per session by that classification (the same text under the same
 * settings and catalog resolves to the same object: sql/session-names.ts memoizes it) and the grants
 * (the configuration is fixed for the process, grants change). A prepared statement's Parse and its
 * Executes share one entry.
 */
import type { Classification } from '../../../src/shared/statement.js';
import type { SessionInfo } from '../../contracts/session.js';
import type { MessageDecision, PolicyEngine } from '../../policy/engine.js';

export class PolicyCheck {
  private readonly cache = new WeakMap<Classification, Map<string, MessageDecision>>();

  constructor(
    private readonly engine: PolicyEngine,
    private readonly info: SessionInfo,
  ) {}

  /** `cacheable`: nothing in the message named a session object whose definition may change. */
  decide(classification: Classification, grants: readonly string[], cacheable: boolean): MessageDecision {
    const key = grants.join(',');
    const byGrants = cacheable ? this.cache.get(classification) : undefined;
    const hit = byGrants?.get(key);
    if (hit) return hit;
    const decided = this.engine.decideAll(this.info.identity, this.info.connection.name, classification, {
      grants,
    });
    if (cacheable) {
      if (byGrants) byGrants.set(key, decided);
      else this.cache.set(classification, new Map([[key, decided]]));
    }
    return decided;
  }
}
