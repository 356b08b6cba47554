import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from './sha256.js';

/** sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
export const MAX_SOCKET_PATH = 107;

/** Where sockets go whose natural path (under a long state root) would not fit. */
export const SHORT_SOCKET_DIR = '/run/berth-sockets';

/**
 * `preferred` when it fits in a unix socket address; otherwise a short path named by a hash of
 * it, so the same preferred path always maps to the same socket. A long --exec-root or runtime
 * root must not make a tty container fail with ENAMETOOLONG.
 */
export function socketPath(preferred: string, shortDir: string = SHORT_SOCKET_DIR): string {
  if (Buffer.byteLength(preferred) <= MAX_SOCKET_PATH) return preferred;
  mkdirSync(shortDir, { recursive: true, mode: 0o700 });
  return join(shortDir, `${sha256Hex(preferred).slice(0, 32)}.sock`);
}
