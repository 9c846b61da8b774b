/**
 * Liveness and readiness. `/healthz` says the process answers; `/readyz` says a load balancer may send it
 * new tunnels: every named check passes. Checks read state kept up to date in the background (a probe of
 * the store, the JWKS fetches, the drain flag), so a probe storm from a load balancer costs nothing and a
 * slow store cannot make /readyz itself hang.
 */

export type CheckState = { ok: true } | { ok: false; message: string };

export interface ReadinessCheck {
  /** Shown in /readyz's body: `store`, `signing_key`, `jwks`, `draining`. */
  readonly name: string;
  state(): CheckState;
}

export interface ReadinessReport {
  ready: boolean;
  /** Names of the checks that failed (empty when ready). */
  failed: string[];
  checks: Record<string, CheckState>;
}

export class Readiness {
  private readonly checks: ReadinessCheck[] = [];

  /** Add a check; another module's condition joins /readyz with one line. */
  add(check: ReadinessCheck): this {
    this.checks.push(check);
    return this;
  }

  report(): ReadinessReport {
    const checks: Record<string, CheckState> = {};
    const failed: string[] = [];
    for (const check of this.checks) {
      let state: CheckState;
      try {
        state = check.state();
      } catch (err) {
        state = { ok: false, message: (err as Error).message };
      }
      checks[check.name] = state;
      if (!state.ok) failed.push(check.name);
    }
    return { ready: failed.length === 0, failed, checks };
  }

  get ready(): boolean {
    return this.report().ready;
  }
}

/** A check whose state something else sets (e.g. the signing key, loaded at start). */
export function fixedCheck(name: string, state: CheckState): ReadinessCheck {
  return { name, state: () => state };
}

export interface ProbeOptions {
  /** How often to probe (ms). */
  intervalMs?: number;
  /** A probe slower than this fails (ms). */
  timeoutMs?: number;
  onChange?: (state: CheckState) => void;
}

/**
 * A check that runs `probe` in the background every interval and reports the last result; not ok until the
 * first probe passed. `fail()` marks it failed at once (e.g. a group commit failed), until a probe passes.
 */
export class ProbeCheck implements ReadinessCheck {
  private current: CheckState = { ok: false, message: 'not checked yet' };
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    readonly name: string,
    private readonly probe: () => Promise<void>,
    private readonly options: ProbeOptions = {},
  ) {}

  state(): CheckState {
    return this.current;
  }

  /** Probe now, then every interval. Resolves after the first probe (whatever its result). */
  async start(): Promise<void> {
    await this.run();
    this.timer = setInterval(() => void this.run(), this.options.intervalMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  fail(message: string): void {
    this.set({ ok: false, message });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const timeoutMs = this.options.timeoutMs ?? 3_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.probe(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      this.set({ ok: true });
    } catch (err) {
      this.set({ ok: false, message: (err as Error).message });
    } finally {
      clearTimeout(timer);
      this.running = false;
    }
  }

  private set(state: CheckState): void {
    const changed = state.ok !== this.current.ok;
    this.current = state;
    if (changed) this.options.onChange?.(state);
  }
}
