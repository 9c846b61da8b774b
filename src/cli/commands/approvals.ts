import type { Command } from 'commander';

export function registerApprovalCommands(_program: Command): void {
  // Not built yet.
}
