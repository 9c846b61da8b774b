import type { Command } from 'commander';

export function registerAuditCommands(_program: Command): void {
  // Not built yet.
}
