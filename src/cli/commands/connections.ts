import type { Command } from 'commander';

export function registerConnectionsCommand(_program: Command): void {
  // Not built yet.
}
