import { fileURLToPath } from 'node:url';

export interface NativePaths {
  /** The node-addon-api module. */
  addon: string;
  /** The container init executable. */
  init: string;
  /** The per-container shim executable. */
  shim: string;
}

/** Absolute paths of the artefacts node-gyp builds into libs/native/build/Release. */
export function nativePaths(): NativePaths {
  // This module runs from libs/native/dist/src/.
  const release = new URL('../../build/Release/', import.meta.url);
  const at = (name: string): string => fileURLToPath(new URL(name, release));
  return { addon: at('berth_native.node'), init: at('berth-init'), shim: at('berth-shim') };
}
