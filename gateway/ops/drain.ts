/**
 * Graceful shutdown. On SIGTERM the gateway stops being ready at once (load balancers take it out), refuses
 * new tunnels with a message that says to connect again, and gives open sessions `shutdown.grace` to finish;
 * then it ends the rest with 57P01 (admin shutdown), as PostgreSQL's own smart-then-fast shutdown does.
 * A second signal skips what is left of the grace period.
 */
import type { CheckState, ReadinessCheck } from './health.js';

/** What a client sees when a draining gateway refuses its new tunnel (hoopctl prints it). */
export const DRAINING_MESSAGE =
  'the gateway is shutting down and takes no new sessions: connect again to reach another replica';

export type DrainOutcome = 'finished' | 'grace_expired' | 'interrupted';

export class Drain implements ReadinessCheck {
  readonly name = 'draining';
  private startedAt?: number;
  private readonly interrupt = new AbortController();

  get draining(): boolean {
    return this.startedAt !== undefined;
  }

  state(): CheckState {
    return this.draining ? { ok: false, message: 'the gateway is shutting down' } : { ok: true };
  }

  /** Readiness false from now on; new tunnels are refused. Idempotent. */
  begin(): void {
    this.startedAt ??= Date.now();
  }

  /** Stop waiting: the grace period is over now (a second signal). */
  skipGrace(): void {
    this.interrupt.abort();
  }

  /**
   * Wait until `active()` is 0, the grace period ends, or skipGrace() is called. Polls: sessions end on
   * their own schedule and the count is a cheap read.
   */
  async waitForSessions(active: () => number, graceMs: number, pollMs = 100): Promise<DrainOutcome> {
    const deadline = (this.startedAt ?? Date.now()) + graceMs;
    const signal = this.interrupt.signal;
    while (active() > 0) {
      if (signal.aborted) return 'interrupted';
      const left = deadline - Date.now();
      if (left <= 0) return 'grace_expired';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(pollMs, left));
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return 'finished';
  }
}
