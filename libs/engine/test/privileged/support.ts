/** What the engine's privileged tests share: the busybox fixture, their skip reason, a stream read whole. */
import * as fs from 'node:fs';

/** The busybox rootfs tarball tools/fixtures makes (the README's first command). */
export const BUSYBOX_TAR = '/var/lib/berth/fixtures/busybox.tar';

/** Why a privileged engine test cannot run here, or false. */
export const privilegedSkip: string | false = (process.getuid?.() !== 0 && 'needs root') || (!fs.existsSync(BUSYBOX_TAR) && `no ${BUSYBOX_TAR}`);

export async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
