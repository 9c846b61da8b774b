/** Completion candidates from the real command tree (no gateway: values that need one are tested end to end). */
import { describe, expect, it } from 'vitest';
import { complete } from '../../../src/cli/completion.js';
import { buildProgram } from '../../../src/cli/main.js';

const names = async (words: string[]) => (await complete(await buildProgram(), words)).map(([n]) => n);

describe('completion', () => {
  it('commands, subcommands and options from the tree', async () => {
    expect(await names(['conn'])).toEqual(['connections', 'connect']);
    expect(await names(['sessions', ''])).toEqual(['list', 'show', 'replay', 'export']);
    expect(await names(['exec', 'prod-db', '--for'])).toEqual(['--format']);
    expect(await names(['--pro'])).toEqual(['--profile']);
    expect(await names(['completion', ''])).toEqual(['bash', 'zsh', 'fish']);
  });
  it('choices of an option value; hidden commands never', async () => {
    expect(await names(['login', '--token-store', ''])).toEqual(['keychain', 'file']);
    expect(await names(['__'])).toEqual([]);
  });
});
