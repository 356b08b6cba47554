import type { GraphDriverDescriptor } from '@berth/plugin-api';
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
