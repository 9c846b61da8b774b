import type { Command } from 'commander';

export function registerLoginCommands(_program: Command): void {
  // Not built yet.
}
