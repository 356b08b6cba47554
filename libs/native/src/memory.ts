// The process's own memory: what the V8 heap does not cover.
import { loadAddon } from './addon.js';

/**
 * Gives the malloc heap's free memory back to the kernel (glibc malloc_trim: the top of the heap
 * and free whole pages inside it). A long-lived daemon calls it after a compacting GC: the
 * buffers and parser zones of a burst of work are freed to malloc, which otherwise keeps them
 * (~4 MiB of berthd's RSS after bench/lifecycle's runs). Answers whether anything was released;
 * false, and nothing done, where the addon is not built.
 */
export function trimMallocHeap(): boolean {
  let addon;
  try {
    addon = loadAddon();
  } catch {
    return false;
  }
  return addon.mallocTrim();
}
