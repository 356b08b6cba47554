import type { Readable } from 'node:stream';
import type { Change, CreateOpts, DriverLogger, DriverSkip, GraphDriver, GraphDriverCapabilities, GraphDriverDescriptor, GraphDriverDeps } from '@berth/plugin-api';
import type { ArchiveFs } from './archive.js';

export interface VfsDriverOptions {
  root: string;
  logger: DriverLogger;
  fs: ArchiveFs;
}

/** Docker's vfs layout: `<root>/dir/<id>`, each layer a full copy of its parent. */
export class VfsDriver implements GraphDriver {
  readonly name = 'vfs';
  constructor(private readonly opts: VfsDriverOptions) {}
  async create(_id: string, _parent: string, _opts?: CreateOpts): Promise<void> {}
  async createReadWrite(_id: string, _parent: string, _opts?: CreateOpts): Promise<void> {}
  async remove(_id: string): Promise<void> {}
  async get(_id: string, _mountLabel?: string): Promise<string> {
    return '';
  }
  async put(_id: string): Promise<void> {}
  async exists(_id: string): Promise<boolean> {
    return false;
  }
  async status(): Promise<[string, string][]> {
    return [];
  }
  async getMetadata(_id: string): Promise<Record<string, string>> {
    return {};
  }
  async cleanup(): Promise<void> {}
  async diff(_id: string, _parent: string): Promise<Readable> {
    throw new Error('not implemented');
  }
  async changes(_id: string, _parent: string): Promise<Change[]> {
    return [];
  }
  async applyDiff(_id: string, _parent: string, _diff: Readable): Promise<number> {
    return 0;
  }
  async diffSize(_id: string, _parent: string): Promise<number> {
    return 0;
  }
  async capabilities(): Promise<GraphDriverCapabilities> {
    return { reproducesExactDiffs: false };
  }
}

export const vfsDriver: GraphDriverDescriptor = {
  kind: 'graph',
  name: 'vfs',
  async create(deps: GraphDriverDeps): Promise<GraphDriver | DriverSkip> {
    const { realSyscalls } = await import('@berth/native');
    return new VfsDriver({ root: deps.root, logger: deps.logger, fs: realSyscalls() });
  },
};
