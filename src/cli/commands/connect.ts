import type { Command } from 'commander';

export function registerConnectCommand(_program: Command): void {
  // Not built yet.
}
