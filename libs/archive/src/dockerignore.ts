/**
 * `.dockerignore` as Docker's patternmatcher reads it: one pattern per line, `#` comments,
 * `*`, `?`, `[...]` and `**` (across directories), `!` exceptions (the last matching line wins),
 * patterns cleaned as Go's filepath.Clean with no leading `/`. The build client (berth build)
 * leaves excluded files out of the context it sends; the daemon applies the same rules again.
 */
import * as path from 'node:path';

interface IgnoreRule {
  re: RegExp;
  exclusion: boolean;
}

/** A path pattern (`*`, `?`, `[...]`, `**`) as a regular expression over a context-relative path (also COPY's globs). */
export function pathPatternRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` matches zero or more directories; a trailing `**` anything.
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) re += '\\[';
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith('!') || cls.startsWith('^')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Cleans a pattern as Go's filepath.Clean, without the leading `/`. */
function cleanPattern(p: string): string {
  const norm = path.posix.normalize(p.trim()).replace(/^\/+/, '').replace(/\/+$/, '');
  return norm === '.' ? '' : norm;
}

export class IgnoreMatcher {
  private readonly rules: IgnoreRule[] = [];

  constructor(text: string) {
    for (const raw of text.split(/\r?\n/)) {
      let line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      let exclusion = false;
      if (line.startsWith('!')) {
        exclusion = true;
        line = line.slice(1).trim();
      }
      const p = cleanPattern(line);
      if (p === '') continue;
      this.rules.push({ re: pathPatternRegExp(p), exclusion });
    }
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** Whether an exception (`!pattern`) may re-include something below an excluded directory. */
  get hasExclusions(): boolean {
    return this.rules.some((r) => r.exclusion);
  }

  /** Whether the context-relative path (or one of its parents) is excluded. */
  excluded(rel: string): boolean {
    const parents = rel.split('/');
    let out = false;
    for (const r of this.rules) {
      let m = r.re.test(rel);
      // A pattern naming a parent directory covers what is under it.
      for (let i = 1; !m && i < parents.length; i++) m = r.re.test(parents.slice(0, i).join('/'));
      if (m) out = !r.exclusion;
    }
    return out;
  }
}
