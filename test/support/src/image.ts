import { existsSync } from 'node:fs';
import { DEFAULT_BUSYBOX_IMAGE_TAR, makeBusyboxImageTar } from '@berth/fixtures';

let made: Promise<string> | undefined;

/**
 * The busybox rootfs tarball that `berth import -c 'CMD ["sh"]' <tar> busybox:latest` turns
 * into the default image; made once per process (deterministic bytes, so a stable image id).
 */
export function busyboxImageTar(): Promise<string> {
  made ??= (async () => {
    if (!existsSync(DEFAULT_BUSYBOX_IMAGE_TAR)) await makeBusyboxImageTar(DEFAULT_BUSYBOX_IMAGE_TAR);
    return DEFAULT_BUSYBOX_IMAGE_TAR;
  })();
  return made;
}
