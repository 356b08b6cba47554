/**
 * The sandbox a default container gets, seen from inside it (a berthd on scratch roots):
 * Docker's masked paths read empty, its read-only paths refuse writes, --privileged has
 * neither; /dev/shm is 64m by default, --shm-size sized, and absent with --ipc none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;

/** Host files that exist and have content here: a masked one must read empty inside. */
const hostHasContent = (p: string): boolean => {
  try {
    return readFileSync(p).length > 0;
  } catch {
    return false;
  }
};
const hostDirHasEntries = (p: string): boolean => existsSync(p) && statSync(p).isDirectory() && readdirSync(p).length > 0;

describe('the default sandbox from inside a container', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon({ network: false });
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    const ids = (await berth(['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
  });

  test('masked files read empty, masked directories list empty, /proc/sys and /proc/sysrq-trigger refuse writes', async () => {
    // The host has these (the test means nothing for a path the host lacks).
    assert.ok(hostHasContent('/proc/interrupts') && hostHasContent('/proc/keys') && hostHasContent('/proc/timer_list'));
    assert.ok(hostDirHasEntries('/sys/firmware'));
    const files = ['/proc/interrupts', '/proc/keys', '/proc/timer_list', ...['/proc/kcore', '/proc/sched_debug', '/proc/latency_stats', '/proc/timer_stats'].filter((p) => existsSync(p))];
    const dirs = ['/sys/firmware', ...['/proc/acpi', '/proc/asound', '/proc/scsi', '/sys/devices/virtual/powercap'].filter(hostDirHasEntries)];
    const script = [
      ...files.map((f) => `echo "${f} $(cat ${f} | wc -c)"`),
      ...dirs.map((d) => `echo "${d} $(ls -A ${d} | wc -l)"`),
      'echo x > /proc/sys/kernel/domainname 2>/dev/null && echo "domainname written" || echo "domainname refused"',
      'echo h > /proc/sysrq-trigger 2>/dev/null && echo "sysrq written" || echo "sysrq refused"',
      'touch /proc/sys/vm/x 2>/dev/null && echo "vm written" || echo "vm refused"',
    ].join('; ');
    const out = await ok(['run', '--rm', 'busybox', 'sh', '-c', script]);
    const lines = out.trim().split('\n');
    for (const f of [...files, ...dirs]) assert.ok(lines.includes(`${f} 0`), `${f} is not empty inside:\n${out}`);
    for (const w of ['domainname', 'sysrq', 'vm']) assert.ok(lines.includes(`${w} refused`), out);
    const ro = await ok(['run', '--rm', 'busybox', 'sh', '-c', 'grep -E " /proc/(sys|bus|fs|irq|sysrq-trigger) " /proc/mounts']);
    for (const line of ro.trim().split('\n')) assert.match(line, /\sro[,\s]/, line);
    assert.ok(ro.includes(' /proc/sys '), ro);
  });

  test('--privileged: nothing masked, nothing read-only', async () => {
    const out = await ok(['run', '--rm', '--privileged', 'busybox', 'sh', '-c', 'cat /proc/interrupts | wc -c; ls -A /sys/firmware | wc -l; grep -cE " /proc/(sys|interrupts) " /proc/mounts || true']);
    const [interrupts, firmware, overmounts] = out.trim().split('\n').map(Number);
    assert.ok(interrupts! > 0 && firmware! > 0, out);
    assert.equal(overmounts, 0, out);
  });

  test('--security-opt systempaths=unconfined: nothing masked, nothing read-only, seccomp still on', async () => {
    const out = await ok(['run', '--rm', '--security-opt', 'systempaths=unconfined', 'busybox', 'sh', '-c', 'cat /proc/interrupts | wc -c; grep -cE " /proc/(sys|interrupts|kcore) " /proc/mounts || true; grep Seccomp: /proc/self/status']);
    const [interrupts, overmounts, seccomp] = out.trim().split('\n');
    assert.ok(Number(interrupts) > 0, out);
    assert.equal(overmounts, '0', out);
    assert.match(seccomp!, /Seccomp:\s+2/);
  });

  test('/dev/shm: 65536k by default, 131072k with --shm-size 128m, none with --ipc none', async () => {
    const shm = async (...args: string[]): Promise<string> => (await berth(['run', '--rm', ...args, 'busybox', 'sh', '-c', 'grep " /dev/shm " /proc/mounts; ls -d /dev/shm 2>&1 || true'])).stdout;
    const def = await shm();
    assert.match(def, /^shm \/dev\/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k/, def);
    const big = await shm('--shm-size', '128m');
    assert.match(big, /^shm \/dev\/shm tmpfs \S*size=131072k/, big);
    const none = await berth(['run', '--rm', '--ipc', 'none', 'busybox', 'sh', '-c', 'grep /dev/shm /proc/mounts']);
    assert.equal(none.code, 1, `grep found a /dev/shm mount with --ipc none: ${none.stdout}`);
    assert.equal(none.stdout, '');
    const noneDir = await ok(['run', '--rm', '--ipc', 'none', 'busybox', 'sh', '-c', 'test -e /dev/shm && echo present || echo absent; readlink /proc/self/ns/ipc']);
    const [present, ns] = noneDir.trim().split('\n');
    assert.equal(present, 'absent', noneDir);
    // Still a private IPC namespace of its own.
    assert.match(ns!, /^ipc:\[\d+\]$/);
    assert.notEqual(ns, readlinkSync('/proc/self/ns/ipc'));
  });
});
