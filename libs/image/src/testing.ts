/** Helpers for tests of images and of what uses them (`@berth/image/testing`). */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import type { GraphDriver } from '@berth/plugin-api';

export interface TarDirDriverOptions {
  /** Keep the owners of the layers' files (GNU tar --numeric-owner, as root); default: the caller's. */
  keepOwners?: boolean;
}

/**
 * A graph driver of full copies per layer, extracted by GNU tar: enough for tests (plain files;
 * with keepOwners, a container's rootfs on the real kernel), trusted input only.
 */
export function tarDirDriver(home: string, opts: TarDirDriverOptions = {}): GraphDriver & { applied: number } {
  const dir = (id: string): string => path.join(home, id);
  const d = {
    name: 'tardir',
    applied: 0,
    async create(id: string, parent: string) {
      fs.mkdirSync(dir(id), { recursive: true });
      if (parent !== '') execFileSync('cp', ['-a', '-T', dir(parent), dir(id)]);
    },
    async createReadWrite(id: string, parent: string) {
      return d.create(id, parent);
    },
    async remove(id: string) {
      fs.rmSync(dir(id), { recursive: true, force: true });
    },
    async get(id: string) {
      if (!fs.existsSync(dir(id))) throw Object.assign(new Error(`no layer ${id}`), { code: 'BERTH_LAYER_NOT_FOUND' });
      return dir(id);
    },
    async put() {},
    async exists(id: string) {
      return fs.existsSync(dir(id));
    },
    async status(): Promise<[string, string][]> {
      return [['Backing Filesystem', 'test']];
    },
    async getMetadata() {
      return {};
    },
    async cleanup() {},
    async diff(): Promise<Readable> {
      throw new Error('no diff in this driver');
    },
    async changes() {
      return [];
    },
    async applyDiff(id: string, _parent: string, diff: Readable) {
      d.applied++;
      const owners = opts.keepOwners === true ? ['--numeric-owner', '-p'] : ['--no-same-owner'];
      const child = spawn('tar', ['-C', dir(id), ...owners, '-xf', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.stdin.on('error', () => undefined);
      diff.on('error', (e) => child.stdin.destroy(e));
      diff.pipe(child.stdin);
      await new Promise<void>((res, rej) => child.on('close', (code) => (code === 0 ? res() : rej(new Error(`tar: ${err.trim()}`)))));
      return 1;
    },
    async diffSize() {
      return 0;
    },
    async capabilities() {
      return { reproducesExactDiffs: false };
    },
  };
  return d;
}
