import { createRequire } from 'node:module';

let crypto: typeof import('node:crypto') | undefined;

/**
 * The hex SHA-256 of `text`. node:crypto (a dozen internal modules, ~2 ms of a CLI start) is
 * loaded on the first call only: most runs of berth-runtime never hash anything.
 */
export function sha256Hex(text: string): string {
  crypto ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  return crypto.createHash('sha256').update(text).digest('hex');
}
