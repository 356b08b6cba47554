import type { DriverSkip, GraphDriver, GraphDriverDeps, GraphDriverDescriptor } from '@berth/plugin-api';
import { AufsDriver } from './driver.js';
import { chooseUnion, probeAufs } from './probe.js';
import { runProgram } from './union.js';

export const aufsDriver: GraphDriverDescriptor = {
  kind: 'graph',
  name: 'aufs',
  async create(deps: GraphDriverDeps): Promise<GraphDriver | DriverSkip> {
    // Loaded here so a process that never makes the driver never loads the addon.
    const { realSyscalls } = await import('@berth/native');
    const sys = realSyscalls();
    const logger = deps.logger.child({ driver: 'aufs' });
    const fs = await import('node:fs/promises');
    const made = await fs.mkdir(deps.root, { recursive: true, mode: 0o700 });
    const facts = await probeAufs(deps.root, sys, runProgram);
    const choice = chooseUnion(facts);
    if ('skip' in choice) {
      // A home made only to probe is not left behind.
      if (made !== undefined) await fs.rm(made, { recursive: true, force: true }).catch(() => undefined);
      logger.info({ reason: choice.skip }, 'aufs not available');
      return { skip: choice.skip };
    }
    const driver = new AufsDriver({ root: deps.root, logger, sys, union: choice.union });
    try {
      await driver.init();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code !== 'EPERM') throw err;
      return { skip: 'aufs: mounting needs CAP_SYS_ADMIN' };
    }
    logger.info({ union: choice.union }, 'aufs branches mounted with ' + choice.union);
    return driver;
  },
};

export { AufsDriver, mountAt } from './driver.js';
export type { AufsDriverOptions } from './driver.js';
export { chooseUnion, probeAufs, backingFsName } from './probe.js';
export type { AufsFacts } from './probe.js';
export { aufsMountPlan, fuseOverlayOptions, mountUnion, unmountUnion } from './union.js';
export type { UnionKind, AufsSyscalls, RunProgram, Branches } from './union.js';
export { normalizeBranch, branchChanges, WH_PREFIX, WH_OPAQUE, WH_META_PREFIX } from './whiteouts.js';
