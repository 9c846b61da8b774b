import type { Command } from 'commander';

export function registerSessionCommands(_program: Command): void {
  // Not built yet.
}
