import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { ChangeKind, type Change } from '@berth/plugin-api';
import { packDir, type ArchiveFs } from './archive.js';
import { changesBetween, diskUsage } from './changes.js';

/**
 * What storage drivers share when a layer is read through its view (a mounted union, or a plain
 * directory): diffs by comparing two views, a per-layer lock and a table of counted views.
 * Each driver keeps its layout and its mount call.
 */

/** Gets and releases a layer's view (a GraphDriver's get/put). */
export interface LayerViews {
  get(id: string): Promise<string>;
  put(id: string): Promise<void>;
}

/** A tar of `upper` against `lower` (null: the whole tree): what changed, deletions as `.wh.` whiteouts. */
export async function packChanges(lower: string | null, upper: string, afs: ArchiveFs): Promise<Readable> {
  if (lower === null) return packDir(upper, afs);
  const changes = await changesBetween(lower, upper);
  return packDir(upper, afs, {
    include: changes.filter((c) => c.kind !== ChangeKind.Delete).map((c) => c.path.slice(1)),
    whiteouts: changes.filter((c) => c.kind === ChangeKind.Delete).map((c) => c.path.slice(1)),
  });
}

/** Bytes of the regular files added or modified in `upper` against `lower` (null: all of `upper`), each inode once. */
export async function changesSize(lower: string | null, upper: string): Promise<number> {
  if (lower === null) return diskUsage(upper);
  let size = 0;
  const seen = new Set<number>();
  for (const c of await changesBetween(lower, upper)) {
    if (c.kind === ChangeKind.Delete) continue;
    const st = await fs.lstat(path.join(upper, c.path)).catch(() => null);
    // Hard links count once, as the bytes ApplyDiff wrote.
    if (st?.isFile() && !seen.has(st.ino)) {
      seen.add(st.ino);
      size += st.size;
    }
  }
  return size;
}

/** Runs `fn` on the views of `id` and `parent` (null for ''), then releases them. */
export async function withViews<T>(views: LayerViews, id: string, parent: string, fn: (view: string, parentView: string | null) => Promise<T>): Promise<T> {
  const view = await views.get(id);
  try {
    if (parent === '') return await fn(view, null);
    const pview = await views.get(parent);
    try {
      return await fn(view, pview);
    } finally {
      await views.put(parent);
    }
  } finally {
    await views.put(id);
  }
}

/** Changes of `id` against `parent` by comparing their views. */
export function changesOfViews(views: LayerViews, id: string, parent: string): Promise<Change[]> {
  return withViews(views, id, parent, (view, pview) => changesBetween(pview, view));
}

/** DiffSize of `id` against `parent` by comparing their views. */
export function diffSizeOfViews(views: LayerViews, id: string, parent: string): Promise<number> {
  return withViews(views, id, parent, (view, pview) => changesSize(pview, view));
}

/**
 * A tar of `id` against `parent` by comparing their views; the views stay held until the stream
 * closes (`onReleaseError` hears a failed release then).
 */
export async function diffOfViews(views: LayerViews, id: string, parent: string, afs: ArchiveFs, onReleaseError: (err: unknown) => void): Promise<Readable> {
  const view = await views.get(id);
  let pview: string | null = null;
  const release = async (): Promise<void> => {
    await views.put(id);
    if (pview !== null) await views.put(parent);
  };
  try {
    if (parent !== '') pview = await views.get(parent);
    const stream = await packChanges(pview, view, afs);
    stream.once('close', () => void release().catch(onReleaseError));
    return stream;
  } catch (err) {
    await release();
    throw err;
  }
}

/** Per-key queue: calls for one key run one at a time, in order; other keys are not held up. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** A counted view: how many gets are outstanding and where the view is. */
export interface HeldView {
  count: number;
  path: string;
}

/**
 * The counted views of a mounting driver, with a per-layer lock: a get of a held view only
 * counts (no I/O); the first get opens it and the last put closes it, each under the layer's lock.
 */
export class ViewTable {
  private readonly held = new Map<string, HeldView>();
  private readonly lock = new KeyedLock();

  /** Runs `fn` under the lock of `id` (so it never interleaves with a get/put of that layer). */
  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(id, fn);
  }

  private again(id: string): string | null {
    const h = this.held.get(id);
    if (h === undefined) return null;
    h.count++;
    return h.path;
  }

  /**
   * The view of `id`: counted again when held, else `open()` under the lock; it answers the path
   * and whether to count it (false: nothing to release, e.g. a base layer's own directory).
   */
  async get(id: string, open: () => Promise<{ path: string; counted: boolean }>): Promise<string> {
    const fast = this.again(id);
    if (fast !== null) return fast;
    return this.lock.run(id, async () => {
      const held = this.again(id);
      if (held !== null) return held;
      const v = await open();
      if (v.counted) this.held.set(id, { count: 1, path: v.path });
      return v.path;
    });
  }

  /** Releases one get of `id`; at the last one forgets it and calls `close` (with what was held, if anything) under the lock. */
  async put(id: string, close: (held: HeldView | undefined) => Promise<void>): Promise<void> {
    const fast = this.held.get(id);
    if (fast !== undefined && fast.count > 1) {
      fast.count--;
      return;
    }
    await this.lock.run(id, async () => {
      const h = this.held.get(id);
      if (h !== undefined && h.count > 1) {
        h.count--;
        return;
      }
      this.held.delete(id);
      await close(h);
    });
  }

  has(id: string): boolean {
    return this.held.has(id);
  }

  delete(id: string): void {
    this.held.delete(id);
  }

  /** The held views (a copy: safe to delete while iterating). */
  entries(): [string, HeldView][] {
    return [...this.held];
  }

  clear(): void {
    this.held.clear();
  }
}

const unescapeMountinfo = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The last mount on `dir` (the visible one) by /proc/self/mountinfo: its root within its filesystem and its type; null if none. */
export async function mountAt(dir: string): Promise<{ root: string; fstype: string } | null> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const want = path.resolve(dir);
  let found: { root: string; fstype: string } | null = null;
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f[4] === undefined || unescapeMountinfo(f[4]) !== want) continue;
    const sep = f.indexOf('-');
    found = { root: unescapeMountinfo(f[3] ?? '/'), fstype: f[sep + 1] ?? '' };
  }
  return found;
}

/** The mount calls a driver home needs (@berth/native's Syscalls) and their flags, passed in so this package loads no addon. */
export interface HomeMounts {
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** MS_BIND, MS_PRIVATE, MNT_DETACH. */
  flags: { bind: number; private: number; detach: number };
}

/**
 * A driver home made a private mount (bound onto itself when it is not a mount point), so
 * layer mounts below it never propagate to other mount namespaces. Needs root.
 */
export class PrivateHome {
  /** Whether a bind of the home onto itself is ours to undo. */
  private bound = false;

  constructor(
    readonly root: string,
    private readonly sys: HomeMounts,
  ) {}

  async make(): Promise<void> {
    const existing = await mountAt(this.root);
    if (existing === null) {
      this.sys.mount(this.root, this.root, null, this.sys.flags.bind, null);
      this.bound = true;
    } else if (existing.root !== '/') {
      // A bind of the home onto itself left by a daemon that did not clean up (killed):
      // ours to undo at cleanup. A filesystem mounted there (root "/") is the admin's.
      this.bound = true;
    }
    this.sys.mount(null, this.root, null, this.sys.flags.private, null);
  }

  /** Undoes our bind (lazily); a failure goes to `onError`. */
  release(onError: (err: unknown) => void): void {
    if (!this.bound) return;
    try {
      this.sys.umount2(this.root, this.sys.flags.detach);
    } catch (err) {
      onError(err);
    }
    this.bound = false;
  }
}
