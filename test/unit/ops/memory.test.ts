import { describe, expect, it } from 'vitest';
import { applyMemoryDefaults } from '../../../gateway/ops/memory.js';

const ALL = ['--heap-growing-percent=33', '--no-liftoff', '--semi-space-growth-factor=1'];

describe("the gateway's memory defaults", () => {
  it('applies them when the operator did not choose', () => {
    expect(applyMemoryDefaults([], '')).toEqual(ALL);
    expect(applyMemoryDefaults(['--enable-source-maps'], '--max-old-space-size=2048')).toEqual(ALL);
  });

  it("leaves the operator's own choice alone (node's arguments or NODE_OPTIONS, any spelling)", () => {
    expect(applyMemoryDefaults(['--heap-growing-percent=50'], '')).toEqual(ALL.slice(1));
    expect(applyMemoryDefaults([], '--max-semi-space-size=4 --heap_growing_percent=80')).toEqual([
      '--no-liftoff',
    ]);
    expect(applyMemoryDefaults(['--liftoff'], '--min_semi_space_size=2')).toEqual([
      '--heap-growing-percent=33',
    ]);
    expect(applyMemoryDefaults(['--no-wasm-tier-up'], '')).not.toContain('--no-liftoff');
  });
});
