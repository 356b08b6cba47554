/**
 * The in-process runtime on the real kernel: lifecycle, rollback of a failed start, chroot on
 * ramfs, user namespaces, exec, seccomp. Root only. Each test uses its own ids and state root.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, copyFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCgroupManager } from '@berth/cgroups';
import { silentLogger } from '@berth/log';
import { realSyscalls } from '@berth/native';
import { Runtime, runtimeCgroups, migrationPrimer, defaultSpec, dockerProfileToOci, loadSeccompProfile, dockerDefaultCapabilities, type OciSpec } from '../../src/index.js';

const uniq = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const work = mkdtempSync(join(tmpdir(), `berth-rt-${uniq}-`));
// A user-namespaced root (host uid 100000) must be able to reach its rootfs.
chmodSync(work, 0o755);
after(() => {
  spawnSync('umount', ['-l', join(work, 'ramfs')]);
  rmSync(work, { recursive: true, force: true });
});

/** A minimal busybox root: the static busybox and the applets the tests call. */
function rootfs(dir: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  execFileSync('chmod', ['755', join(dir, 'bin', 'busybox')]);
  for (const a of ['sh', 'cat', 'sleep', 'true', 'ps', 'grep', 'id', 'ls', 'touch', 'echo', 'hostname'])
    symlinkSync('busybox', join(dir, 'bin', a));
}

function bundle(name: string, mod: (s: OciSpec) => void, root?: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  if (!root) rootfs(join(dir, 'rootfs'));
  const s = defaultSpec();
  s.process!.terminal = false;
  if (root) s.root!.path = root;
  mod(s);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(s));
  return dir;
}

const manager = await createCgroupManager();
const rt = new Runtime({ root: join(work, 'state'), logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls });

/** Runs a container in the foreground with its stdout captured into a file. */
async function run(id: string, b: string): Promise<{ code: number; out: string }> {
  const outFile = join(work, `${id}.out`);
  const fd = openSync(outFile, 'w');
  try {
    const code = await rt.run(id, b, { stdio: ['ignore', fd, fd] });
    return { code, out: readFileSync(outFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

function cgroupDirs(id: string): string[] {
  return Object.values(manager.open(`berth/${id}`)?.paths() ?? {}).filter((p) => existsSync(p));
}

test('create, start, state, kill, delete: states follow runc and nothing is left', async () => {
  const id = `lc-${uniq}`;
  const b = bundle('lc', (s) => { s.process!.args = ['sleep', '100']; });
  const rec = await rt.create(id, b, { stdio: ['ignore', 'ignore', 'ignore'] });
  assert.equal(rt.state(id).status, 'created');
  assert.ok(cgroupDirs(id).length > 0, 'the container has its cgroup');
  const procs = readFileSync(join(manager.open(`berth/${id}`)!.paths().pids!, 'cgroup.procs'), 'utf8').trim();
  assert.equal(procs, String(rec.pid), 'the init sits in its cgroup before it runs anything');
  await rt.start(id);
  assert.equal(rt.state(id).status, 'running');
  await assert.rejects(rt.delete(id), /it is running \(use --force\)/);
  await rt.kill(id, 'KILL');
  for (let i = 0; i < 200 && rt.state(id).status !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(rt.state(id).status, 'stopped');
  await rt.delete(id);
  assert.deepEqual(cgroupDirs(id), []);
  assert.equal(existsSync(join(work, 'state', id)), false);
  assert.throws(() => rt.state(id), /does not exist/);
});

test('PID 1 is the process and ps shows only the container; exit codes come back', async () => {
  const b = bundle('ps', (s) => { s.process!.args = ['sh', '-c', 'ps -o pid,comm; exit 3']; });
  const { code, out } = await run(`ps-${uniq}`, b);
  assert.equal(code, 3);
  const pids = out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]);
  assert.equal(pids[0], '1');
  assert.equal(pids.length, 2, out);
});

test('a failed start rolls back: no state, no cgroup, no process, no mount', async () => {
  const id = `fail-${uniq}`;
  const b = bundle('fail', (s) => { s.process!.cwd = '/nonexistent/dir/..'; s.process!.args = ['/bin/true']; });
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
  await assert.rejects(rt.create(id, b, { stdio: ['ignore', 'ignore', 'ignore'] }), /process.cwd: chdir/);
  assert.equal(existsSync(join(work, 'state', id)), false);
  assert.deepEqual(cgroupDirs(id), []);
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), mountsBefore);
  const missing = bundle('missing', (s) => { s.process!.args = ['no-such-command']; });
  await assert.rejects(rt.run(`nf-${uniq}`, missing), (err: Error & { details?: { exitCode?: number } }) => {
    assert.match(err.message, /exec: "no-such-command": executable file not found in \$PATH/);
    assert.equal(err.details?.exitCode, 127);
    return true;
  });
  assert.equal(existsSync(join(work, 'state', `nf-${uniq}`)), false);
});

test('a rootfs on ramfs is entered with chroot, with no way back to the host root', async () => {
  const dir = join(work, 'ramfs');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
  rootfs(join(dir, 'root'));
  writeFileSync(join(work, 'host-marker'), 'host');
  const b = bundle('ramfs-b', (s) => { s.process!.args = ['sh', '-c', `ls / ; cat ${work}/host-marker; ls /..`]; s.root!.readonly = false; }, join(dir, 'root'));
  const { out } = await run(`ram-${uniq}`, b);
  assert.match(out, /bin/);
  assert.doesNotMatch(out, /^host$/m, 'the host file is not reachable');
});

test('a user namespace maps root to the host range', async () => {
  const b = bundle('userns', (s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.mounts = s.mounts!.filter((m) => m.type !== 'cgroup' && m.type !== 'sysfs');
    s.process!.args = ['sh', '-c', 'cat /proc/self/uid_map; id -u'];
  });
  execFileSync('chown', ['-R', '100000:100000', join(b, 'rootfs')]);
  const { code, out } = await run(`uns-${uniq}`, b);
  assert.equal(code, 0, out);
  assert.match(out, /^\s*0\s+100000\s+65536$/m);
  assert.match(out, /^0$/m);
});

test('exec joins the running container: same pid namespace, own exit code', async () => {
  const id = `ex-${uniq}`;
  const b = bundle('exec', (s) => { s.process!.args = ['sleep', '100']; });
  await rt.run(id, b, { detach: true, stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    const outFile = join(work, 'exec.out');
    const fd = openSync(outFile, 'w');
    const code = await rt.exec(id, { user: { uid: 0, gid: 0 }, cwd: '/', args: ['sh', '-c', 'ps -o pid,comm; exit 7'], env: ['PATH=/bin'] }, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    assert.equal(code, 7);
    const out = readFileSync(outFile, 'utf8');
    assert.match(out, /^\s*1 sleep$/m, out);
  } finally {
    await rt.delete(id, true);
  }
});

test('exec joins every namespace whatever order the spec lists them in, mount first', async () => {
  const id = `exm-${uniq}`;
  const b = bundle('exec-mount-first', (s) => {
    s.process!.args = ['sleep', '100'];
    s.hostname = 'mountfirst';
    // Joining the mount namespace first used to hide /proc/<pid>/ns/* from the joins after it.
    s.linux!.namespaces = [{ type: 'mount' }, { type: 'uts' }, { type: 'ipc' }, { type: 'network' }, { type: 'pid' }];
  });
  await rt.run(id, b, { detach: true, stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    const outFile = join(work, 'exec-mount-first.out');
    const fd = openSync(outFile, 'w');
    const code = await rt.exec(id, { user: { uid: 0, gid: 0 }, cwd: '/', args: ['sh', '-c', 'hostname; ps -o pid,comm'], env: ['PATH=/bin'] }, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const out = readFileSync(outFile, 'utf8');
    assert.equal(code, 0, out);
    assert.match(out, /^mountfirst$/m, out);
    assert.match(out, /^\s*1 sleep$/m, out);
  } finally {
    await rt.delete(id, true);
  }
});

test("Docker's default seccomp profile loads: Seccomp 2, mount refused", async () => {
  const profile = loadSeccompProfile('/usr/share/containers/seccomp.json');
  const b = bundle('seccomp', (s) => {
    s.linux!.seccomp = dockerProfileToOci(profile, { capabilities: [...dockerDefaultCapabilities] });
    s.process!.args = ['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'];
  });
  const { code, out } = await run(`sc-${uniq}`, b);
  assert.equal(code, 0, out);
  assert.match(out, /^Seccomp:\s+2$/m);
  assert.match(out, /^NoNewPrivs:\s+1$/m);
  assert.deepEqual(readdirSync(join(work, 'state')).filter((d) => d.includes(uniq)), []);
});

test('the cgroup migration primer moves nothing: the process stays in the cgroups it was in', async () => {
  const before = readFileSync('/proc/self/cgroup', 'utf8');
  const prime = migrationPrimer(manager.layout);
  const first = prime();
  assert.equal(prime(), undefined, 'a second prime while one is in flight does nothing');
  assert.equal(await first, true, 'the write into its own cgroup went through');
  assert.equal(readFileSync('/proc/self/cgroup', 'utf8'), before);
  // A layout naming no hierarchy this process is in: nothing is written.
  assert.equal(migrationPrimer({ mode: 'v1', hierarchies: [] })(), undefined);
});
