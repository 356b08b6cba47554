/**
 * `POST /containers/{id}/update` (`docker update`): Docker's merge of the new resources and
 * restart policy into the container's HostConfig, the checks of the merged result, and the
 * live write of the limits into the cgroup of a running container.
 */
import type { HostConfig, RestartPolicy } from '@berth/api';
import type { Resources } from '@berth/cgroups';
import { BerthError } from '@berth/errors';
import { invalid, normaliseHostConfig } from './config.js';
import type { EngineContext } from './context.js';
import type { ContainerUpdateBody, ContainerUpdateResponse } from './contract.js';
import { linuxResources } from './oci-spec.js';

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function cannotUpdate(id: string, message: string, cause?: unknown): BerthError {
  return new BerthError('BERTH_INVALID_ARGUMENT', `Cannot update container ${id}: ${message}`, { cause, details: { field: 'body' } });
}

/**
 * The HostConfig after the update (Docker's container.UpdateContainer): a zero or empty field
 * leaves the current value, PidsLimit is taken when present, the restart policy when named.
 * Throws for the conflicts Docker refuses before anything changes.
 */
export function mergeUpdate(id: string, cur: HostConfig, body: ContainerUpdateBody): HostConfig {
  const next: HostConfig & Record<string, unknown> = { ...cur };
  const b = body as Record<string, unknown>;
  // Docker stores the default memory+swap (twice the memory) at create; Berth keeps 0 for it.
  const curSwap = cur.MemorySwap === 0 && cur.Memory > 0 ? cur.Memory * 2 : cur.MemorySwap;
  const nano = num(b.NanoCpus ?? b.NanoCPUs);
  const period = num(b.CpuPeriod);
  const quota = num(b.CpuQuota);
  if (nano > 0 && cur.CpuPeriod > 0) throw cannotUpdate(id, 'Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set');
  if (nano > 0 && cur.CpuQuota > 0) throw cannotUpdate(id, 'Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set');
  if (period > 0 && cur.NanoCpus > 0) throw cannotUpdate(id, 'Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set');
  if (quota > 0 && cur.NanoCpus > 0) throw cannotUpdate(id, 'Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set');
  const memory = num(b.Memory);
  const swap = num(b.MemorySwap);
  if (memory !== 0 && curSwap > 0 && memory > curSwap && swap === 0)
    throw cannotUpdate(id, 'Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
  const take = (key: string): void => {
    const v = b[key];
    if (typeof v === 'number' && v !== 0) next[key] = v;
    else if (typeof v === 'string' && v !== '') next[key] = v;
  };
  for (const k of ['BlkioWeight', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'MemoryReservation', 'KernelMemory', 'KernelMemoryTCP', 'CpuRealtimePeriod', 'CpuRealtimeRuntime']) take(k);
  if (nano !== 0) next.NanoCpus = nano;
  if (memory !== 0) {
    next.Memory = memory;
    if (swap === 0 && cur.MemorySwap === 0 && cur.Memory > 0) next.MemorySwap = curSwap;
  }
  if (swap !== 0) next.MemorySwap = swap;
  if (typeof b.PidsLimit === 'number') next.PidsLimit = b.PidsLimit <= 0 ? -1 : b.PidsLimit;
  if (typeof b.MemorySwappiness === 'number' && b.MemorySwappiness >= 0) next.MemorySwappiness = b.MemorySwappiness;
  if (typeof b.OomKillDisable === 'boolean') next.OomKillDisable = b.OomKillDisable;
  const rp = b.RestartPolicy as Partial<RestartPolicy> | undefined;
  if (rp && typeof rp.Name === 'string' && rp.Name !== '') {
    if (cur.AutoRemove && rp.Name !== 'no')
      throw new BerthError('BERTH_INVALID_ARGUMENT', 'Restart policy cannot be updated because AutoRemove is enabled for the container', { details: { field: 'RestartPolicy' } });
    next.RestartPolicy = { Name: rp.Name, MaximumRetryCount: num(rp.MaximumRetryCount) };
  }
  return next;
}

/** What changed, as cgroup resources: only those sections are written (devices never). */
export function changedResources(before: HostConfig, after: HostConfig): Resources {
  const a = linuxResources(before) as Resources;
  const b = linuxResources(after) as Resources;
  const out: Resources = {};
  const same = (x: unknown, y: unknown): boolean => JSON.stringify(x) === JSON.stringify(y);
  if (!same(a.cpu, b.cpu)) {
    const cpu = { ...(b.cpu ?? {}) };
    // A limit taken away goes back to the kernel's defaults.
    if (a.cpu?.quota !== undefined && cpu.quota === undefined) cpu.quota = -1;
    if (a.cpu?.shares !== undefined && cpu.shares === undefined) cpu.shares = 1024;
    out.cpu = cpu;
  }
  if (!same(a.memory, b.memory)) out.memory = { ...(b.memory ?? {}) };
  if (!same(a.pids, b.pids)) out.pids = b.pids ?? { limit: -1 };
  if (!same(a.blockIO?.weight, b.blockIO?.weight) && b.blockIO?.weight) out.blockIO = { weight: b.blockIO.weight };
  return out;
}

export async function updateContainer(ctx: EngineContext, ref: string, body: ContainerUpdateBody): Promise<ContainerUpdateResponse> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('body', 'invalid update body: expected a JSON object');
  const c = ctx.get(ref);
  return c.locked(async () => {
    if (c.removing) throw new BerthError('BERTH_CONTAINER_STATE', `Container ${c.id} is marked for removal and cannot be "update"`);
    const merged = mergeUpdate(c.id, c.host, body);
    // The same checks as create, on the result (400 with Docker's wording; nothing changed yet).
    const next = normaliseHostConfig(merged);
    const warnings: string[] = [];
    if (c.rec.State.Running) {
      const h = ctx.cgroups.open(ctx.cgroupPathOf(c));
      if (h) {
        const delta = changedResources(c.host, next);
        if (Object.keys(delta).length) {
          try {
            for (const w of await h.apply(delta)) warnings.push(`${w.item}: ${w.reason}`);
          } catch (err) {
            throw cannotUpdate(c.id, err instanceof Error ? err.message : String(err), err);
          }
        }
      }
    }
    c.host = next;
    ctx.save(c, true);
    ctx.log.info({ containerId: c.id }, 'container updated');
    ctx.emit(c, 'update');
    return { Warnings: warnings };
  });
}
