import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { VolumeDriver } from '@berth/plugin-api';
import { volumeOverSocket } from '../socket.js';

export interface VolumeDriverHarness {
  driver: VolumeDriver;
  cleanup(): Promise<void>;
}

/** Capabilities a case needs; unclaimed ones register as named skips. */
export type VolumeCapability =
  /** Mount answers a directory of this host that the test can write (a v1 plugin's Mountpoint). */
  | 'hostPaths'
  /** What is written through one mount is there at the next (the data outlives Unmount). */
  | 'persistent';

export interface VolumeDriverSuiteOptions {
  claims?: Partial<Record<VolumeCapability, boolean>>;
  transports?: readonly ('in-process' | 'socket')[];
  timeout?: number;
}

const mountId = (): string => randomBytes(32).toString('hex');
const vname = (what: string): string => `suite-${what}-${randomBytes(3).toString('hex')}`;

/**
 * Registers the VolumeDriver contract (specs/plugin-protocol.md §7) under `describe(name)`,
 * in-process and over the plugin socket. `makeDriver` is called once per case.
 */
export function volumeDriverSuite(name: string, makeDriver: () => Promise<VolumeDriverHarness>, opts: VolumeDriverSuiteOptions = {}): void {
  const claims: Record<VolumeCapability, boolean> = { hostPaths: true, persistent: true, ...opts.claims };
  const timeout = opts.timeout ?? 30_000;
  for (const transport of opts.transports ?? ['in-process', 'socket']) {
    const make = transport === 'socket' ? volumeOverSocket(makeDriver) : makeDriver;
    const run = (fn: (d: VolumeDriver) => Promise<void>) => async () => {
      const h = await make();
      try {
        await fn(h.driver);
      } finally {
        await h.cleanup();
      }
    };
    const claimed = (cap: VolumeCapability, title: string, fn: (d: VolumeDriver) => Promise<void>) =>
      claims[cap] ? it(title, { timeout }, run(fn)) : it(title, { skip: `not claimed: ${cap}` }, () => {});

    describe(`${name} volume driver contract (${transport})`, () => {
      it('capabilities: scope local or global', { timeout }, run(async (d) => {
        const caps = await d.capabilities();
        assert.ok(['local', 'global'].includes(caps.Capabilities.Scope), `scope ${caps.Capabilities.Scope}`);
      }));

      it('create, get, list, path, remove; a removed volume is gone from get and list', { timeout }, run(async (d) => {
        const n = vname('life');
        await d.create({ Name: n, Opts: null });
        const got = await d.get({ Name: n });
        assert.equal(got.Volume?.Name, n);
        if (got.Volume?.CreatedAt !== undefined && got.Volume.CreatedAt !== '') assert.ok(!Number.isNaN(Date.parse(got.Volume.CreatedAt)), 'CreatedAt is RFC 3339');
        assert.ok((await d.list()).Volumes.some((v) => v.Name === n));
        assert.equal(typeof (await d.path({ Name: n })).Mountpoint, 'string');
        await d.remove({ Name: n });
        const after = await d.get({ Name: n }).then((r) => r.Volume, () => null);
        assert.equal(after, null, 'get after remove: no volume (null or an error)');
        assert.ok(!(await d.list()).Volumes.some((v) => v.Name === n));
      }));

      it('create with options; two volumes are distinct', { timeout }, run(async (d) => {
        const [a, b] = [vname('a'), vname('b')];
        await d.create({ Name: a, Opts: null });
        await d.create({ Name: b, Opts: null });
        const names = (await d.list()).Volumes.map((v) => v.Name);
        assert.ok(names.includes(a) && names.includes(b));
        await d.remove({ Name: a });
        assert.ok((await d.list()).Volumes.some((v) => v.Name === b));
        await d.remove({ Name: b });
      }));

      it('mount and unmount by ID; two mounts of one volume answer the same path', { timeout }, run(async (d) => {
        const n = vname('mnt');
        await d.create({ Name: n, Opts: null });
        const [i1, i2] = [mountId(), mountId()];
        const m1 = (await d.mount({ Name: n, ID: i1 })).Mountpoint;
        const m2 = (await d.mount({ Name: n, ID: i2 })).Mountpoint;
        assert.ok(m1.length > 0, 'a Mountpoint');
        assert.equal(m2, m1);
        assert.equal((await d.path({ Name: n })).Mountpoint, m1, 'Path answers the mounted path');
        await d.unmount({ Name: n, ID: i1 });
        await d.unmount({ Name: n, ID: i2 });
        await d.remove({ Name: n });
      }));

      it('mount of a volume that does not exist fails with a message', { timeout }, run(async (d) => {
        const err = await d.mount({ Name: vname('missing'), ID: mountId() }).then(() => null, (e: unknown) => e as Error);
        assert.ok(err instanceof Error && err.message.length > 0, 'mount of a missing volume must fail');
      }));

      claimed('hostPaths', 'the Mountpoint is a writable directory of this host', async (d) => {
        const n = vname('host');
        await d.create({ Name: n, Opts: null });
        const id = mountId();
        const m = (await d.mount({ Name: n, ID: id })).Mountpoint;
        assert.ok(path.isAbsolute(m));
        assert.ok((await fs.stat(m)).isDirectory());
        await fs.writeFile(path.join(m, 'probe'), 'x');
        await d.unmount({ Name: n, ID: id });
        await d.remove({ Name: n });
      });

      claimed('persistent', 'data written through one mount is there at the next', async (d) => {
        const n = vname('keep');
        await d.create({ Name: n, Opts: null });
        const id1 = mountId();
        await fs.writeFile(path.join((await d.mount({ Name: n, ID: id1 })).Mountpoint, 'kept'), 'yes');
        await d.unmount({ Name: n, ID: id1 });
        const id2 = mountId();
        assert.equal(await fs.readFile(path.join((await d.mount({ Name: n, ID: id2 })).Mountpoint, 'kept'), 'utf8'), 'yes');
        await d.unmount({ Name: n, ID: id2 });
        await d.remove({ Name: n });
      });
    });
  }
}
