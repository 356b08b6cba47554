/**
 * A container on the aufs storage driver end to end: berthd started with --storage-driver aufs
 * (kernel aufs, or fuse-overlayfs on the same branches where the kernel has none), busybox
 * imported, a container that writes a file and deletes a file of the image (a whiteout in its
 * branch), run through the berth CLI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';


/** Why this host cannot run the aufs driver, or false. */
function unavailable(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  const fsList = readFileSync('/proc/filesystems', 'utf8');
  if (/\taufs$/m.test(fsList)) return false;
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    return 'no aufs in the kernel and no /dev/fuse';
  }
  const onPath = (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => {
    try {
      accessSync(path.join(d, 'fuse-overlayfs'), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return onPath ? false : 'no aufs in the kernel and fuse-overlayfs is not installed';
}

let daemon: Daemon;

const cli = berthCli(() => daemon.host);
const berth = cli.run;
const ok = cli.ok;

/** Mount points (mountinfo field 5) at or below `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
}

describe('a container on the aufs storage driver', { skip: unavailable(), timeout: 180_000 }, () => {
  before(async () => {
    daemon = await startDaemon({ args: ['--storage-driver', 'aufs'] });
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    if (daemon === undefined) return;
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    const home = path.join(daemon.dataRoot, 'aufs');
    await daemon.cleanup();
    assert.deepEqual(mountsUnder(home), [], 'aufs mounts left after the daemon stopped');
  });

  test('info names the driver and the union in use', async () => {
    const info = await ok(['info']);
    assert.match(info, /Storage Driver: aufs/);
    assert.match(info, /Union: (aufs|fuse-overlayfs)/);
  });

  test('run writes, reads and deletes a file of the image; the deletion is a .wh. file in the branch', async () => {
    const name = `e2e-aufs-${process.pid}`;
    const r = await berth(['run', '--name', name, 'busybox', 'sh', '-c', 'echo hi > /tmp/x; cat /tmp/x; rm /bin/ls; ls']);
    // The fixture's busybox shell runs ls as a built-in applet, so the listing still comes.
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'hi');
    assert.ok(lines.includes('bin') && lines.includes('tmp'), r.stdout);
    // Started again (mounted again from the branch): /tmp/x is there, /bin/ls stays deleted.
    const again = await berth(['start', '-a', name]);
    assert.equal(again.stdout.split('\n')[0], 'hi');
    assert.match(again.stderr, /can't remove '\/bin\/ls'/);

    const diff = (await ok(['diff', name])).trim().split('\n');
    assert.ok(diff.includes('D /bin/ls'), diff.join('\n'));
    assert.ok(diff.includes('A /tmp/x'), diff.join('\n'));

    // Docker's layout: diff/<id> with the whiteout as a plain file, layers/<id> listing the parents.
    const home = path.join(daemon.dataRoot, 'aufs');
    const branches = readdirSync(path.join(home, 'diff'));
    const withWhiteout = branches.filter((b) => {
      try {
        return statSync(path.join(home, 'diff', b, 'bin', '.wh.ls')).isFile();
      } catch {
        return false;
      }
    });
    assert.equal(withWhiteout.length, 1, `one branch whites out bin/ls: ${branches.join(', ')}`);
    const parents = readFileSync(path.join(home, 'layers', withWhiteout[0]!), 'utf8').trim().split('\n');
    assert.ok(parents.length >= 1 && parents.every((p) => branches.includes(p)), parents.join(','));
    assert.equal(readFileSync(path.join(home, 'diff', withWhiteout[0]!, 'tmp', 'x'), 'utf8'), 'hi\n');
    await ok(['rm', name]);
    assert.ok(!readdirSync(path.join(home, 'diff')).includes(withWhiteout[0]!), 'the container branch is removed with the container');
  });
});
