import { describe, expect, it } from 'vitest';
import { boundHeapGrowth } from '../../../gateway/ops/memory.js';

describe('the gateway bounds its heap growth', () => {
  it('sets it when the operator did not', () => {
    expect(boundHeapGrowth([], '')).toBe(true);
    expect(boundHeapGrowth(['--enable-source-maps'], '--max-old-space-size=2048')).toBe(true);
  });

  it("leaves the operator's own choice alone (node's arguments or NODE_OPTIONS, either spelling)", () => {
    expect(boundHeapGrowth(['--heap-growing-percent=50'], '')).toBe(false);
    expect(boundHeapGrowth([], '--heap_growing_percent=80')).toBe(false);
  });
});
