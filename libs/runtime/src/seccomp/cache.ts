import { sha256Hex } from '../sha256.js';
import type { OciSeccomp, Syscalls } from '@berth/native';

/** A compiled profile, as the cache hands it out. */
export interface SeccompProgram {
  /** seccompProfileHash of the profile. */
  hash: string;
  /** struct sock_filter[] (8 bytes each), for berth-init to install. A copy: callers may keep it. */
  bpf: Buffer;
  /** Syscall names libseccomp does not know, left out. */
  skipped: readonly string[];
  /** Names whose rule equals the default action, left out. */
  sameAsDefault: readonly string[];
}

function canonical(value: unknown, key: string | undefined): unknown {
  // Argument values are 64-bit words: 5, 5n, and -1 vs 2^64-1 must hash alike.
  if ((key === 'value' || key === 'valueTwo') && (typeof value === 'number' || typeof value === 'bigint')) {
    return BigInt.asUintN(64, BigInt(value)).toString();
  }
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map((v) => canonical(v, undefined));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonical(v, k);
    }
    return out;
  }
  return value;
}

/**
 * sha256 of the profile's canonical JSON (sorted keys, argument values as unsigned 64-bit
 * decimals): equal profiles hash alike whatever their key order.
 */
export function seccompProfileHash(profile: OciSeccomp): string {
  return `sha256:${sha256Hex(JSON.stringify(canonical(profile, undefined)))}`;
}

export interface SeccompCacheOptions {
  /** Programs kept, least recently used dropped first; 64 by default. */
  maxEntries?: number;
}

interface Entry {
  bpf: Buffer;
  skipped: readonly string[];
  sameAsDefault: readonly string[];
}

/**
 * Compiles each distinct profile once. Containers mostly share one default profile, so the
 * daemon asks here instead of compiling per container.
 */
export class SeccompCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;

  constructor(
    private readonly compiler: Pick<Syscalls, 'compileSeccompDetailed'>,
    options: SeccompCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 64;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
  }

  /** The compiled program of `profile`, compiling it on first use. */
  program(profile: OciSeccomp): SeccompProgram {
    const hash = seccompProfileHash(profile);
    let entry = this.entries.get(hash);
    if (entry === undefined) {
      const compiled = this.compiler.compileSeccompDetailed(profile);
      entry = { bpf: Buffer.from(compiled.bpf), skipped: [...compiled.skipped], sameAsDefault: [...compiled.sameAsDefault] };
      this.entries.set(hash, entry);
      if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    } else {
      // Map order is insertion order: re-insert to mark it recently used.
      this.entries.delete(hash);
      this.entries.set(hash, entry);
    }
    return { hash, bpf: Buffer.from(entry.bpf), skipped: entry.skipped, sameAsDefault: entry.sameAsDefault };
  }

  /** Just the program bytes of `profile`. */
  bpf(profile: OciSeccomp): Buffer {
    return this.program(profile).bpf;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
