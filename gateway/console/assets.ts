/**
 * The console's built files (dist/console, made by `npm run build`), read once at start into memory
 * with a gzip copy each: the whole console is a few hundred kilobytes. Only files found at start are
 * ever served, so no request path reaches the file system.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface Asset {
  body: Buffer;
  gzip?: Buffer;
  contentType: string;
  etag: string;
  /** Content-hashed name (assets/…-<hash>.js): cacheable forever. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

function walk(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...walk(path));
    else files.push(path);
  }
  return files;
}

/** Files by URL path below /console/ ("index.html", "assets/index-abc123.js"); empty when not built. */
export function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const file of walk(dir)) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const body = readFileSync(file);
    const name = relative(dir, file).split(sep).join('/');
    const compressible = /^(text|application\/json|image\/svg)/.test(type) && body.length > 512;
    assets.set(name, {
      body,
      ...(compressible ? { gzip: gzipSync(body, { level: 9 }) } : {}),
      contentType: type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      immutable: name.startsWith('assets/'),
    });
  }
  return assets;
}
