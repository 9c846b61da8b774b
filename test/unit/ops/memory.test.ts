import { describe, expect, it } from 'vitest';
import { applyMemoryDefaults } from '../../../gateway/ops/memory.js';

describe("the gateway's memory defaults", () => {
  it('applies them when the operator did not choose', () => {
    expect(applyMemoryDefaults([], '')).toEqual(['--heap-growing-percent=33']);
    expect(applyMemoryDefaults(['--enable-source-maps'], '--max-old-space-size=2048')).toHaveLength(1);
  });

  it("leaves the operator's own choice alone (node's arguments or NODE_OPTIONS, any spelling)", () => {
    expect(applyMemoryDefaults(['--heap-growing-percent=50'], '')).toEqual([]);
    expect(applyMemoryDefaults([], '--max-semi-space-size=4 --heap_growing_percent=80')).toEqual([]);
  });
});
