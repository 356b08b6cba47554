/** Helpers for tests of the engine (`@berth/engine/testing`). */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GraphDriver } from '@berth/plugin-api';

/**
 * A graph driver of full copies on disk, layers unpacked by GNU tar: enough for the engine's use
 * in tests on the real kernel, trusted input only.
 */
export function copyDriver(home: string): GraphDriver {
  const dir = (id: string): string => path.join(home, id);
  const d: GraphDriver = {
    name: 'copytest',
    async create(id, parent) {
      fs.mkdirSync(dir(id), { recursive: true });
      if (parent) execFileSync('cp', ['-a', '-T', dir(parent), dir(id)]);
    },
    async createReadWrite(id, parent) {
      return d.create(id, parent);
    },
    async remove(id) {
      fs.rmSync(dir(id), { recursive: true, force: true });
    },
    async get(id) {
      if (!fs.existsSync(dir(id))) throw Object.assign(new Error(`no layer ${id}`), { code: 'BERTH_LAYER_NOT_FOUND' });
      return dir(id);
    },
    async put() {},
    async exists(id) {
      return fs.existsSync(dir(id));
    },
    async status() {
      return [['Backing Filesystem', 'test']];
    },
    async getMetadata() {
      return {};
    },
    async cleanup() {},
    async diff() {
      throw new Error('not used');
    },
    async changes() {
      return [];
    },
    async applyDiff(id, _parent, diff) {
      const child = spawn('tar', ['-C', dir(id), '--numeric-owner', '-xpf', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
      diff.pipe(child.stdin);
      await new Promise<void>((res, rej) => child.on('exit', (code) => (code === 0 ? res() : rej(new Error(`tar exited ${code}`)))));
      return 0;
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
