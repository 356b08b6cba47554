import type { GraphDriverDescriptor } from '@berth/plugin-api';
import { vfsDriver } from '@berth/storage-vfs';

/**
 * The storage drivers built into berthd, in probe order. A name not in this list is not a
 * built-in (plugin discovery will resolve it once the plugin registry lands).
 */
export const builtinGraphDrivers: readonly GraphDriverDescriptor[] = [vfsDriver];

export function builtinGraphDriver(name: string): GraphDriverDescriptor | undefined {
  return builtinGraphDrivers.find((d) => d.name === name);
}
