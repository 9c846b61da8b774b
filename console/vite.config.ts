/**
 * Builds the web console (console/) into dist/console: one hashed script and one stylesheet under
 * /console/assets/, an index.html with no inline script or style (the gateway's CSP forbids both).
 * `npm run build` runs this after tsc; console/budget.mjs then checks the JavaScript budget.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/console/',
  publicDir: here('public'),
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('../dist/console'),
    emptyOutDir: true,
    target: 'es2022',
    // The polyfill would be inline script; every browser the console supports preloads modules natively.
    modulePreload: { polyfill: false },
    // Keep everything in files: data: URLs would need a looser CSP.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    reportCompressedSize: true,
  },
  logLevel: 'warn',
});
