import type { Command } from 'commander';

export function registerExecCommand(_program: Command): void {
  // Not built yet.
}
