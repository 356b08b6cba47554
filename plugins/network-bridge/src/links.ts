import { randomBytes } from 'node:crypto';
import { BerthError, wrap } from '@berth/errors';
import type { Netlink } from '@berth/netlink';
import type { DriverLogger } from '@berth/plugin-api';

/**
 * Kernel programming as a list of named steps: each step that changed something registers
 * its undo; when a later step fails, the undos run in reverse and the error names the
 * operation (the kernel is left as before).
 */
export class Steps {
  private readonly undos: { name: string; undo: () => Promise<void> }[] = [];
  /** Names of the steps that ran, in order (for logs and tests). */
  readonly ran: string[] = [];

  constructor(private readonly log: DriverLogger) {}

  async step<T>(name: string, run: () => Promise<T>, undo?: (result: T) => Promise<void>): Promise<T> {
    const result = await run();
    this.ran.push(name);
    if (undo !== undefined) this.undos.push({ name, undo: () => undo(result) });
    return result;
  }

  /** Runs every registered undo in reverse; a failing undo is logged and the rest still run. */
  async unwind(): Promise<void> {
    for (const { name, undo } of this.undos.reverse()) {
      try {
        await undo();
      } catch (err) {
        this.log.warn({ err, step: name }, `undo of "${name}" failed`);
      }
    }
    this.undos.length = 0;
  }
}

/** Runs `fn` with a fresh Steps; on failure unwinds and rethrows with `what` as context. */
export async function withSteps<T>(log: DriverLogger, what: string, fn: (s: Steps) => Promise<T>): Promise<T> {
  const steps = new Steps(log);
  try {
    return await fn(steps);
  } catch (err) {
    await steps.unwind();
    throw wrap(err, what);
  }
}

/** Docker's host-side veth name: `veth` + 7 hex characters. */
export function randomVethName(prefix = 'veth'): string {
  return `${prefix}${randomBytes(4).toString('hex').slice(0, 7)}`;
}

export interface BridgeSpec {
  name: string;
  /** 0: leave as the kernel makes it. */
  mtu: number;
  /** CIDRs to put on the bridge (gateway addresses). */
  addresses: string[];
}

/** Random locally administered MAC in Docker's 02:42 range for a new bridge. */
function bridgeMac(): string {
  const b = randomBytes(4);
  return ['02', '42', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Creates (or adopts an existing) bridge, sets MTU and addresses, brings it up. Returns what
 * it did, so delete and restore undo exactly that.
 */
export async function setupBridge(steps: Steps, nl: Netlink, spec: BridgeSpec): Promise<{ created: boolean; added: string[] }> {
  const existing = await nl.link(spec.name);
  let created = false;
  if (existing === undefined) {
    await steps.step(
      `create bridge ${spec.name}`,
      () => nl.createBridge(spec.name, { ...(spec.mtu > 0 ? { mtu: spec.mtu } : {}), mac: bridgeMac() }),
      () => nl.deleteLink(spec.name),
    );
    created = true;
  } else {
    if (existing.kind !== 'bridge') {
      throw new BerthError('BERTH_NETWORK_EXISTS', `device ${spec.name} exists and is not a bridge (${existing.kind ?? 'a physical device'})`);
    }
    if (spec.mtu > 0 && existing.mtu !== spec.mtu) {
      const old = existing.mtu;
      await steps.step(`set mtu ${spec.mtu} on ${spec.name}`, () => nl.setLink(spec.name, { mtu: spec.mtu }), () => nl.setLink(spec.name, { mtu: old }));
    }
  }
  const have = new Set((await nl.addresses(spec.name)).map((a) => a.cidr));
  const added: string[] = [];
  for (const cidr of spec.addresses) {
    if (have.has(cidr)) continue;
    await steps.step(`add address ${cidr} to ${spec.name}`, () => nl.addAddress(spec.name, cidr), () => nl.delAddress(spec.name, cidr));
    added.push(cidr);
  }
  if (existing?.up !== true) {
    await steps.step(`set ${spec.name} up`, () => nl.setLink(spec.name, { up: true }), created ? undefined : () => nl.setLink(spec.name, { up: false }));
  }
  return { created, added };
}

export interface VethSpec {
  hostIf: string;
  containerIf: string;
  bridge: string;
  mtu: number;
  mac: string;
  hairpin: boolean;
  /** Create the container end inside this network namespace. */
  peerNetnsPath?: string;
}

/** The endpoint's veth pair: host end on the bridge and up, container end with its MAC (set at creation). */
export async function setupVeth(steps: Steps, nl: Netlink, spec: VethSpec): Promise<void> {
  await steps.step(
    `create veth ${spec.hostIf} (peer ${spec.containerIf}${spec.peerNetnsPath ? ` in ${spec.peerNetnsPath}` : ''}) on ${spec.bridge}`,
    () =>
      nl.createVeth(spec.hostIf, spec.containerIf, {
        master: spec.bridge, peerMac: spec.mac, ...(spec.mtu > 0 ? { mtu: spec.mtu } : {}), ...(spec.peerNetnsPath ? { peerNetnsPath: spec.peerNetnsPath } : {}),
      }),
    () => nl.deleteLink(spec.hostIf),
  );
  if (spec.hairpin) await steps.step(`set hairpin on ${spec.hostIf}`, () => nl.setHairpin(spec.hostIf, true));
  await steps.step(`set ${spec.hostIf} up`, () => nl.setLink(spec.hostIf, { up: true }));
}
