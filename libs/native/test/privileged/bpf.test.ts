// bpf(2) through the addon on this kernel: load, attach to a fresh cgroup2 directory, query,
// fd by id, detach; and the structured errors of each call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { SystemError } from '@berth/errors';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE, realSyscalls } from '../../src/index.js';
import { notRoot, uniqueName } from './helpers.js';

const cgroup2 = readFileSync('/proc/self/mountinfo', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
const skip = notRoot || (cgroup2 === undefined ? 'no cgroup2 mount' : false);

/** r0 = verdict; exit. */
function constProgram(verdict: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(0xb7, 0); // mov r0, imm
  b.writeInt32LE(verdict, 4);
  b.writeUInt8(0x95, 8); // exit
  return b;
}

const isSys = (code: string, syscall: string) => (e: unknown) => {
  const sys = e instanceof SystemError ? e : (e as { cause?: unknown }).cause;
  assert.ok(sys instanceof SystemError, `not a SystemError: ${String(e)}`);
  assert.equal(sys.code, code);
  assert.equal(sys.syscall, syscall);
  return true;
};

test('bpf: load, attach, query, replace, detach on a cgroup2 directory', { skip }, (t) => {
  const sys = realSyscalls();
  const dir = `${cgroup2!}/${uniqueName('berth-bpf')}`;
  mkdirSync(dir);
  const fds: number[] = [];
  t.after(() => {
    for (const fd of fds) closeSync(fd);
    rmdirSync(dir);
    assert.ok(!readdirSync(cgroup2!).includes(dir.slice(cgroup2!.length + 1)));
  });
  const dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  fds.push(dirFd);
  const allow = sys.bpfProgLoadCgroupDevice(constProgram(1), 'Apache');
  fds.push(allow);
  const deny = sys.bpfProgLoadCgroupDevice(constProgram(0), 'Apache');
  fds.push(deny);
  assert.deepEqual(sys.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE).progIds, []);
  sys.bpfProgAttach(allow, dirFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI);
  const q = sys.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE);
  assert.equal(q.progIds.length, 1);
  assert.equal(q.attachFlags, BPF_F_ALLOW_MULTI);
  const byId = sys.bpfProgGetFdById(q.progIds[0]!);
  fds.push(byId);
  sys.bpfProgAttach(deny, dirFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI | BPF_F_REPLACE, byId);
  const q2 = sys.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE).progIds;
  assert.equal(q2.length, 1);
  assert.notEqual(q2[0], q.progIds[0]);
  // Detaching the replaced one again: it is no longer there.
  assert.throws(() => sys.bpfProgDetach(allow, dirFd, BPF_CGROUP_DEVICE), isSys('ENOENT', 'bpf_prog_detach'));
  sys.bpfProgDetach(deny, dirFd, BPF_CGROUP_DEVICE);
  assert.deepEqual(sys.bpfProgQuery(dirFd, BPF_CGROUP_DEVICE).progIds, []);
});

test('bpf: failures are SystemErrors naming the call; a verifier refusal says why', { skip }, () => {
  const sys = realSyscalls();
  // r0 never set: the verifier refuses it (EACCES) and its log is in the message.
  const bad = Buffer.alloc(8);
  bad.writeUInt8(0x95, 0);
  assert.throws(() => sys.bpfProgLoadCgroupDevice(bad, 'Apache'), (e: unknown) => isSys('EACCES', 'bpf_prog_load')(e) && /R0 !read_ok/.test((e as Error).message));
  assert.throws(() => sys.bpfProgLoadCgroupDevice(Buffer.alloc(5), 'Apache'), isSys('EINVAL', 'bpf_prog_load'));
  assert.throws(() => sys.bpfProgAttach(999_999, 999_998, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), isSys('EBADF', 'bpf_prog_attach'));
  assert.throws(() => sys.bpfProgQuery(999_998, BPF_CGROUP_DEVICE), isSys('EBADF', 'bpf_prog_query'));
  assert.throws(() => sys.bpfProgGetFdById(0x7ffffff0), isSys('ENOENT', 'bpf_prog_get_fd_by_id'));
  assert.throws(() => sys.bpfProgAttach(-1, 0, 0, 0), TypeError);
});
