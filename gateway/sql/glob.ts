/** Globs as policies write them: `*` any run of characters, `?` one character, everything else literal. */

/** Compile one glob to an anchored RegExp (case-insensitive when asked). */
export function globToRegExp(glob: string, caseInsensitive = false): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '.*';
    else if (ch === '?') source += '.';
    else source += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'is' : 's');
}

/** Compile a list of globs once; the returned test is true when any of them matches. */
export function compileGlobs(globs: readonly string[], caseInsensitive = false): (value: string) => boolean {
  const patterns = globs.map((g) => globToRegExp(g, caseInsensitive));
  return (value) => patterns.some((p) => p.test(value));
}
