/**
 * An agent's budget of rows returned per hour (config `agents[].rows_per_hour`): a sliding window of
 * what each identity received through MCP on this gateway. In memory: replicas each keep their own.
 */
const HOUR_MS = 3_600_000;

interface Spend {
  at: number;
  rows: number;
}

export class RowBudget {
  private readonly spent = new Map<string, Spend[]>();

  constructor(private readonly now: () => number = Date.now) {}

  private window(key: string): Spend[] {
    const since = this.now() - HOUR_MS;
    const kept = (this.spent.get(key) ?? []).filter((s) => s.at > since);
    if (kept.length > 0) this.spent.set(key, kept);
    else this.spent.delete(key);
    return kept;
  }

  /** Rows still allowed this hour under `perHour` (Infinity when there is no budget). */
  remaining(key: string, perHour: number): number {
    if (perHour <= 0) return Number.POSITIVE_INFINITY;
    const used = this.window(key).reduce((sum, s) => sum + s.rows, 0);
    return Math.max(0, perHour - used);
  }

  /** When the oldest spend in the window leaves it (the budget grows again then). */
  refillsAt(key: string): Date | undefined {
    const oldest = this.window(key)[0];
    return oldest ? new Date(oldest.at + HOUR_MS) : undefined;
  }

  spend(key: string, rows: number): void {
    if (rows <= 0) return;
    const list = this.window(key);
    list.push({ at: this.now(), rows });
    this.spent.set(key, list);
  }
}
