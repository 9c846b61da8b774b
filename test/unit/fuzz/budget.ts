/**
 * How many inputs each fuzz property runs, and the tally bench/fuzz.mjs prints. The CI run is
 * bounded and seeded (fast); HOOP_FUZZ_SCALE multiplies every budget (bench/fuzz.mjs runs ≥ 1 million
 * inputs in total), HOOP_FUZZ_SEED replays a run, HOOP_FUZZ_REPORT names a JSON-lines file each
 * property appends `{ name, inputs, ms }` to.
 */
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';

const SCALE = Number(process.env.HOOP_FUZZ_SCALE ?? 1);
export const SEED = Number(process.env.HOOP_FUZZ_SEED ?? 20250611);

/** The number of inputs for a property whose CI budget is `base`. */
export function budget(base: number): number {
  return Math.max(1, Math.round(base * SCALE));
}

/** Run a synchronous property with the seeded budget and record its figures. */
export function fuzz<Ts extends [unknown, ...unknown[]]>(
  name: string,
  base: number,
  property: fc.IPropertyWithHooks<Ts> | fc.IProperty<Ts>,
): void {
  const inputs = budget(base);
  const started = process.hrtime.bigint();
  fc.assert(property as fc.IProperty<Ts>, { numRuns: inputs, seed: SEED, endOnFailure: true });
  report(name, inputs, started);
}

/** Run an asynchronous property with the seeded budget and record its figures. */
export async function fuzzAsync<Ts extends [unknown, ...unknown[]]>(
  name: string,
  base: number,
  property: fc.IAsyncProperty<Ts>,
): Promise<void> {
  const inputs = budget(base);
  const started = process.hrtime.bigint();
  await fc.assert(property, { numRuns: inputs, seed: SEED, endOnFailure: true });
  report(name, inputs, started);
}

function report(name: string, inputs: number, started: bigint): void {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const file = process.env.HOOP_FUZZ_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ name, inputs, ms })}\n`);
}
