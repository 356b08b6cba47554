import type { GraphDriverDescriptor, IpamDriverDescriptor, NetworkDriverDescriptor } from '@berth/plugin-api';
import { defaultIpam } from '@berth/ipam-default';
import { bridgeDriver } from '@berth/network-bridge';
import { hostDriver, nullDriver } from '@berth/network-host';
import { overlay2Driver } from '@berth/storage-overlay2';
import { aufsDriver } from '@berth/storage-aufs';
import { vfsDriver } from '@berth/storage-vfs';

/**
 * The storage drivers built into berthd, in probe order (Docker's: overlay2, aufs, vfs). A name
 * not in this list is not a built-in (plugin discovery will resolve it once the plugin
 * registry lands).
 */
export const builtinGraphDrivers: readonly GraphDriverDescriptor[] = [overlay2Driver, aufsDriver, vfsDriver];

export function builtinGraphDriver(name: string): GraphDriverDescriptor | undefined {
  return builtinGraphDrivers.find((d) => d.name === name);
}

/** The network drivers built into berthd (`bridge`, `host`, `null`) and the default IPAM. */
export const builtinNetworkDrivers: readonly NetworkDriverDescriptor[] = [bridgeDriver, hostDriver, nullDriver];
export const builtinIpamDrivers: readonly IpamDriverDescriptor[] = [defaultIpam];
