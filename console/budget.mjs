// The console's JavaScript budget: every script `npm run build` wrote to dist/console, gzipped,
// must stay under 150 KB together. Prints the figure; exits 1 (failing the build) when over.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 150 * 1024;
const dir = fileURLToPath(new URL('../dist/console/assets/', import.meta.url));
let raw = 0;
let gzipped = 0;
for (const name of readdirSync(dir).filter((n) => n.endsWith('.js'))) {
  const body = readFileSync(join(dir, name));
  raw += body.length;
  gzipped += gzipSync(body, { level: 9 }).length;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
// stderr: stdout belongs to whoever ran the build (`npm pack --json` runs it as prepack).
console.error(`console: JavaScript ${kb(raw)}, ${kb(gzipped)} gzipped (budget ${kb(BUDGET)})`);
if (gzipped > BUDGET) {
  console.error('console: over the JavaScript budget — see docs/console.md');
  process.exit(1);
}
