/**
 * Container-escape classes on the real kernel (root only): what a process inside the container
 * can reach of the init before it execs (CVE-2016-9962, CVE-2024-21626), the runtime binary
 * through /proc/self/exe (CVE-2019-5736), and (uid_t)-1 as a user. Each test uses its own ids.
 *
 * BERTH_TEST_INIT and BERTH_TEST_SHIM point the runtime at another berth-init and berth-shim (e.g.
 * an older build) to show that these tests fail on them; the berth-init whose hash must not
 * change is then that one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync,
  readlinkSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCgroupManager } from '@berth/cgroups';
import { silentLogger } from '@berth/log';
import { emptyPlan, encodePlan, nativePaths, realSyscalls } from '@berth/native';
import { Runtime, runtimeCgroups, defaultSpec, type OciSpec, type OciUser } from '../../src/index.js';

const uniq = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const work = mkdtempSync(join(tmpdir(), `berth-esc-${uniq}-`));
chmodSync(work, 0o755);
after(() => rmSync(work, { recursive: true, force: true }));

const paths = {
  ...nativePaths(),
  ...(process.env.BERTH_TEST_INIT ? { init: process.env.BERTH_TEST_INIT } : {}),
  ...(process.env.BERTH_TEST_SHIM ? { shim: process.env.BERTH_TEST_SHIM } : {}),
};
const manager = await createCgroupManager();
const state = join(work, 'state');
const rt = new Runtime({ root: state, logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls, paths });

function rootfs(dir: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'etc']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'cat', 'sleep', 'true', 'id', 'ls', 'readlink', 'echo', 'grep']) symlinkSync('busybox', join(dir, 'bin', a));
}

function bundle(name: string, mod: (s: OciSpec) => void): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  rootfs(join(dir, 'rootfs'));
  const s = defaultSpec();
  s.process!.terminal = false;
  s.process!.env = ['PATH=/bin'];
  mod(s);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(s));
  return dir;
}

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

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/**
 * A shell joined to every namespace of `pid` (its root too: the mount namespace's), as root but
 * without CAP_SYS_PTRACE unless asked (nothing but what nsenter needs): what a process exec'd
 * into the container has. The namespace files are opened here, with every capability, and
 * handed down as fds: the init's /proc/PID/ns is closed to a process without CAP_SYS_PTRACE.
 */
function insideArgs(pid: number, ptrace: boolean): { args: string[]; fds: number[] } {
  const caps = ptrace ? '-all,+sys_admin,+sys_chroot,+sys_ptrace' : '-all,+sys_admin,+sys_chroot';
  const fds: number[] = [];
  const nsArgs: string[] = [];
  for (const [file, opt] of [['mnt', 'mount'], ['pid', 'pid'], ['net', 'net'], ['ipc', 'ipc'], ['uts', 'uts']] as const) {
    if (readlinkSync(`/proc/${pid}/ns/${file}`) === readlinkSync(`/proc/self/ns/${file}`)) continue;
    fds.push(openSync(`/proc/${pid}/ns/${file}`, 'r'));
    nsArgs.push(`--${opt}=/proc/self/fd/${2 + fds.length}`);
  }
  return { args: ['--bounding-set', caps, '--inh-caps', '-all', 'nsenter', ...nsArgs, '--', '/bin/sh', '-c'], fds };
}

function inside(pid: number, script: string, opts: { ptrace?: boolean } = {}): string {
  const { args, fds } = insideArgs(pid, opts.ptrace === true);
  try {
    const r = spawnSync('setpriv', [...args, script], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe', ...fds] });
    return `${r.stdout}${r.stderr}`;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

test('while the init waits for start, its fds lead nowhere on the host and /proc/<init> is closed to the container', async () => {
  const id = `esc-fd-${uniq}`;
  const b = bundle('fd', (s) => { s.process!.args = ['sleep', '100']; });
  const rec = await rt.create(id, b, { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    const bad: string[] = [];
    for (const n of readdirSync(`/proc/${rec.pid}/fd`)) {
      let target: string;
      let st;
      try {
        target = readlinkSync(`/proc/${rec.pid}/fd/${n}`);
        st = statSync(`/proc/${rec.pid}/fd/${n}`);
      } catch {
        continue; // closed meanwhile
      }
      // Pipes, sockets and /dev/null are stdio and the report pipe; the exec fifo is a fifo
      // (no way on from it). A directory or a regular host file is a way out.
      if (st.isDirectory() || st.isFile()) bad.push(`fd ${n} -> ${target}`);
    }
    assert.deepEqual(bad, [], 'the waiting init holds no host directory or file');
    const cwd = readlinkSync(`/proc/${rec.pid}/cwd`);
    const root = readlinkSync(`/proc/${rec.pid}/root`);
    assert.ok(cwd.startsWith(root), `the init's cwd ${cwd} is inside its root ${root}`);

    // In the container, PID 1 is the waiting init.
    // (The names in /proc/1/fd stay listable: the directory is root's and so is the process;
    // what they lead to is behind the ptrace check, which a non-dumpable init fails.)
    const out = inside(rec.pid, [
      'n=0; for f in /proc/1/fd/*; do n=$((n+1)); readlink "$f" >/dev/null 2>&1 && echo "FD-READ $f"; ( cd "$f" ) 2>/dev/null && echo "FD-ENTERED $f"; done',
      'cat /proc/1/exe >/dev/null 2>&1 && echo EXE-READ; readlink /proc/1/cwd >/dev/null 2>&1 && echo CWD-READ; ls /proc/1/root/ >/dev/null 2>&1 && echo ROOT-READ',
      'echo "DONE $n"',
    ].join('\n'));
    assert.match(out, /DONE [1-9]/, out);
    assert.doesNotMatch(out, /FD-READ|FD-ENTERED|EXE-READ|CWD-READ|ROOT-READ/, `a container process reached /proc/<init>: ${out}`);
  } finally {
    await rt.delete(id, true);
  }
});

test('exec with a cwd of /proc/self/fd/N (N = 3..15) fails and never runs the process', async () => {
  const id = `esc-cwd-${uniq}`;
  const b = bundle('cwd', (s) => { s.process!.args = ['sleep', '100']; });
  await rt.run(id, b, { detach: true, stdio: ['ignore', 'ignore', 'ignore'], keep: true });
  try {
    for (let n = 3; n <= 15; n++) {
      const marker = join(b, 'rootfs', 'tmp', `ran-${n}`);
      const outFile = join(work, `cwd-${n}.out`);
      const fd = openSync(outFile, 'w');
      let code: number;
      let err: unknown;
      try {
        code = await rt.exec(id, { user: { uid: 0, gid: 0 }, cwd: `/proc/self/fd/${n}`, args: ['sh', '-c', `pwd > /tmp/ran-${n}; echo RAN`], env: ['PATH=/bin'] }, {
          stdio: ['ignore', fd, fd],
        });
      } catch (e) {
        err = e;
        code = -1;
      } finally {
        closeSync(fd);
      }
      const out = readFileSync(outFile, 'utf8');
      assert.notEqual(code, 0, `cwd /proc/self/fd/${n}: the exec succeeded: ${out}`);
      assert.ok(!existsSync(marker), `cwd /proc/self/fd/${n}: the process ran in ${existsSync(marker) ? readFileSync(marker, 'utf8') : ''}`);
      assert.doesNotMatch(out, /RAN/);
      const text = err instanceof Error ? err.message : out;
      assert.match(text, new RegExp(`process\\.cwd: .*\\/proc\\/self\\/fd\\/${n}`), `a clear error naming the cwd: ${text}`);
      // Refused because fd N is no directory at all, not caught late because it was a host one.
      assert.doesNotMatch(text, /resolves outside/, `cwd /proc/self/fd/${n}: the init held a host directory at fd ${n}: ${text}`);
    }
  } finally {
    await rt.delete(id, true);
  }
});

// Started by a shim that makes a copy per start, and by one given the runtime's kept copy.
const rtCopyPerStart = new Runtime({ root: state, logger: silentLogger(), cgroups: runtimeCgroups(manager), syscalls: realSyscalls, paths, keepSealedInit: false });

for (const [how, r] of [['a copy made for this start', rtCopyPerStart], ["the runtime's kept copy", rt]] as const)
test(`from ${how}: the waiting init does not run from the host berth-init, and what /proc/1/exe gives cannot be written (CVE-2019-5736)`, async () => {
  if (r.sealedInit) assert.ok(await r.sealedInit.ready(), 'the runtime keeps a sealed copy');
  const rt = r;
  const tag = r.sealedInit ? 'kept' : 'copy';
  const id = `esc-exe-${tag}-${uniq}`;
  const host = paths.init;
  const before = sha256(host);
  const b = bundle(`exe-${tag}`, (s) => { s.process!.args = ['sleep', '100']; });
  const rec = await rt.create(id, b, { stdio: ['ignore', 'ignore', 'ignore'] });
  let holder: ReturnType<typeof spawn> | undefined;
  const fds: number[] = [];
  try {
    const exe = readlinkSync(`/proc/${rec.pid}/exe`);
    assert.notEqual(exe, host, 'the waiting init does not run from the host file');
    assert.match(exe, /^\/memfd:/, `the waiting init runs from ${exe}`);
    // A container process holds what /proc/1/exe gives (with CAP_SYS_PTRACE, as a privileged
    // container could), waits until the init has exec'd the container's process (nothing runs
    // the file any more) and then tries to open it for writing and to write it.
    const script = [
      'exec 5</proc/1/exe || { echo NO-EXE; exit 0; }',
      'echo "EXE=$(readlink /proc/self/fd/5)"',
      'read go',
      'if ( exec 6>>/proc/self/fd/5 ) 2>/dev/null; then echo OPENED-FOR-WRITE',
      '  case $(readlink /proc/self/fd/5) in /memfd:*) echo x 2>/dev/null >>/proc/self/fd/5 && echo WROTE;; esac',
      'fi',
      'echo DONE',
    ].join('\n');
    const a = insideArgs(rec.pid, true);
    fds.push(...a.fds);
    holder = spawn('setpriv', [...a.args, script], { stdio: ['pipe', 'pipe', 'pipe', ...a.fds] });
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    holder.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<void>((resolve) => holder!.once('exit', () => resolve()));
    for (let i = 0; i < 400 && !/EXE=|NO-EXE/.test(out); i++) await new Promise((r) => setTimeout(r, 5));
    await rt.start(id);
    for (let i = 0; i < 400 && readlinkSync(`/proc/${rec.pid}/exe`).startsWith('/memfd:'); i++) await new Promise((r) => setTimeout(r, 5));
    holder.stdin!.end('go\n');
    await exited;
    assert.match(out, /DONE|NO-EXE/, out);
    assert.doesNotMatch(out, /WROTE/, out);
    if (/OPENED-FOR-WRITE/.test(out)) assert.match(out, /EXE=\/memfd:/, `the host binary was opened for writing: ${out}`);
  } finally {
    holder?.kill('SIGKILL');
    for (const fd of fds) closeSync(fd);
    await rt.delete(id, true);
  }
  assert.equal(sha256(host), before, 'the host berth-init is unchanged');
});

test("every start of a runtime that keeps a copy execs that one copy", async () => {
  assert.ok(await rt.sealedInit!.ready(), 'the runtime keeps a sealed copy');
  const inodes: string[] = [];
  for (const n of [1, 2]) {
    const id = `esc-kept-${n}-${uniq}`;
    const b = bundle(`kept-${n}`, (s) => { s.process!.args = ['sleep', '100']; });
    const rec = await rt.create(id, b, { stdio: ['ignore', 'ignore', 'ignore'] });
    try {
      assert.match(readlinkSync(`/proc/${rec.pid}/exe`), /^\/memfd:berth-init/);
      const st = statSync(`/proc/${rec.pid}/exe`);
      inodes.push(`${st.dev}:${st.ino}`);
    } finally {
      await rt.delete(id, true);
    }
  }
  assert.equal(inodes[0], inodes[1], 'both inits run from the same sealed copy');
});

test('a #!/proc/self/exe entrypoint or exec runs berth-init in the container, never from the host file', async () => {
  const id = `esc-shebang-${uniq}`;
  const host = paths.init;
  const before = sha256(host);
  const b = bundle('shebang', (s) => { s.process!.args = ['/evil']; });
  writeFileSync(join(b, 'rootfs', 'evil'), '#!/proc/self/exe\n', { mode: 0o755 });
  const r = await run(id, b);
  assert.notEqual(r.code, 0, 'berth-init with no plan fails');
  const id2 = `esc-shebang-exec-${uniq}`;
  const b2 = bundle('shebang-exec', (s) => { s.process!.args = ['sleep', '100']; });
  writeFileSync(join(b2, 'rootfs', 'evil'), '#!/proc/self/exe\n', { mode: 0o755 });
  await rt.run(id2, b2, { detach: true, stdio: ['ignore', 'ignore', 'ignore'], keep: true });
  try {
    const code = await rt.exec(id2, { user: { uid: 0, gid: 0 }, cwd: '/', args: ['/evil'], env: ['PATH=/bin'] }, { stdio: ['ignore', 'ignore', 'ignore'] });
    assert.notEqual(code, 0);
  } finally {
    await rt.delete(id2, true);
  }
  assert.equal(sha256(host), before, 'the host berth-init is unchanged');
});

test('a uid or gid of (uid_t)-1 or beyond 32 bits is refused, never run as root', async () => {
  for (const [field, user] of [
    ['process.user.uid', { uid: 4294967295, gid: 0 }],
    ['process.user.uid', { uid: 4294967296, gid: 0 }],
    ['process.user.gid', { uid: 1000, gid: 4294967295 }],
    ['process.user.additionalGids[0]', { uid: 1000, gid: 1000, additionalGids: [4294967296] }],
  ] as const) {
    const id = `esc-uid-${uniq}-${Math.random().toString(36).slice(2, 6)}`;
    const b = bundle(id, (s) => {
      s.process!.args = ['sh', '-c', 'id'];
      s.process!.user = JSON.parse(JSON.stringify(user)) as OciUser;
    });
    let r: { code: number; out: string } | undefined;
    let err: unknown;
    try {
      r = await run(id, b);
    } catch (e) {
      err = e;
    }
    assert.equal(r, undefined, `${JSON.stringify(user)} ran: ${r?.out}`);
    assert.match((err as Error).message, new RegExp(`^${field.replace(/[[\].]/g, '\\$&')}: `));
    assert.ok(!existsSync(join(state, id)), 'nothing is left of the refused container');
  }
});

test('berth-init itself refuses (uid_t)-1 when a plan asks for it', () => {
  // A plan past the runtime's checks (the encoder refuses the value: the record is patched).
  const plan = emptyPlan();
  plan.mode = 'exec';
  plan.args = ['/bin/true'];
  plan.uid = 4242;
  const bytes = encodePlan(plan);
  const at = bytes.indexOf(Buffer.from([33, 0, 4, 0, 0, 0, 0x92, 0x10, 0, 0]));
  assert.ok(at > 0, 'the uid record is found');
  bytes.writeUInt32LE(0xffffffff, at + 6);
  const planFile = join(work, 'uid-plan');
  writeFileSync(planFile, bytes);
  const planFd = openSync(planFile, 'r');
  try {
    // fd 3 the plan, fd 4 the report pipe, read until every holder (the clone too) closed it.
    const r = spawnSync(paths.init, [], { stdio: ['ignore', 'ignore', 'ignore', planFd, 'pipe'], encoding: 'utf8', timeout: 10_000 });
    const report = String(r.output[4]);
    assert.match(report, /^error\t22\tsetresuid\t/m, report);
    assert.doesNotMatch(report, /^ready/m, report);
  } finally {
    closeSync(planFd);
  }
});

test('exec into a chroot (ramfs) container stays in its root, whatever the cwd', async () => {
  const id = `esc-ramfs-${uniq}`;
  const dir = join(work, 'ramfs');
  mkdirSync(dir);
  spawnSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
  try {
    rootfs(join(dir, 'root'));
    writeFileSync(join(work, 'host-marker'), 'host');
    symlinkSync('/../../..', join(dir, 'root', 'up'));
    const b = join(work, 'ramfs-b');
    mkdirSync(b);
    const s = defaultSpec();
    s.process!.terminal = false;
    s.process!.args = ['sleep', '100'];
    s.root = { path: join(dir, 'root'), readonly: false };
    writeFileSync(join(b, 'config.json'), JSON.stringify(s));
    await rt.run(id, b, { detach: true, stdio: ['ignore', 'ignore', 'ignore'], keep: true });
    try {
      for (const cwd of ['/', '/../..', '/up', '/proc/1/root/..']) {
        const outFile = join(work, 'ramfs-exec.out');
        const fd = openSync(outFile, 'w');
        try {
          const code = await rt.exec(id, { user: { uid: 0, gid: 0 }, cwd, args: ['sh', '-c', `pwd; ls; cat ${work}/host-marker; ls /..`], env: ['PATH=/bin'] }, {
            stdio: ['ignore', fd, fd],
          });
          const out = readFileSync(outFile, 'utf8');
          assert.doesNotMatch(out, /^host$/m, `cwd ${cwd}: the host file is reachable: ${out}`);
          if (cwd === '/') assert.equal(code, 0, `cwd /: runs: ${out}`);
          if (code === 0 || cwd === '/') assert.match(out, /^\/\n[^]*\bbin\b/, `cwd ${cwd}: runs at the container's root: ${out}`);
        } finally {
          closeSync(fd);
        }
      }
    } finally {
      await rt.delete(id, true);
    }
  } finally {
    spawnSync('umount', ['-l', dir]);
  }
});
