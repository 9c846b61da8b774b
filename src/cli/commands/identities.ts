import type { Command } from 'commander';

export function registerIdentityCommands(_program: Command): void {
  // Not built yet.
}
