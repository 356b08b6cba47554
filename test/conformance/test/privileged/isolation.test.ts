/**
 * What the container is isolated by: namespaces, mounts, capabilities, seccomp, masked and
 * read-only paths, rlimits, user namespace mappings, devices. Each case runs under every
 * runtime in BERTH_CONFORMANCE_RUNTIMES and is compared with the reference (runc).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import assert from 'node:assert/strict';
import { dockerProfileToOci, loadSeccompProfile } from '@berth/runtime';
import { parseProbeOutput, type OciSpec, type ProbeReport, type ProbeSyscallReport, type ProbeWriteReport } from '@berth/test-support';
import {
  assertExit,
  capMask,
  conformanceCase,
  describeRuntimes,
  namespacesDifferingFromHost,
  normaliseCgroupLines,
  normaliseDev,
  normaliseMounts,
  NS_ENTRY_TO_OCI,
  type CaseContext,
} from '../../src/index.js';

describeRuntimes();

function report(r: { code: number | null; stdout: string; stderr: string; argv: string[]; signal: NodeJS.Signals | null; timedOut: boolean; durationMs: number }): ProbeReport {
  assertExit(r, 0);
  return parseProbeOutput(r.stdout);
}

function hostNamespaces(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync('/proc/self/ns')) out[n] = readlinkSync(`/proc/self/ns/${n}`);
  return out;
}

function mountCtx(ctx: CaseContext) {
  return { rootfs: ctx.bundle.rootfs, cgroupsPath: ctx.bundle.spec.linux?.cgroupsPath, maskedPaths: ctx.bundle.spec.linux?.maskedPaths };
}

conformanceCase('mount table of runc\'s default spec', {
  observe: (r, ctx) => normaliseMounts(report(r).mounts, mountCtx(ctx)),
  expect: (mounts) => {
    const at = (mp: string) => mounts.find((m) => m.mountPoint === mp);
    assert.equal(mounts[0]?.mountPoint, '/');
    assert.equal(at('/')?.root, '<rootfs>');
    assert.ok(at('/')?.options?.includes('ro'), 'root.readonly: / is mounted ro');
    for (const [mp, fstype] of [['/proc', 'proc'], ['/dev', 'tmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs'], ['/dev/mqueue', 'mqueue'], ['/sys', 'sysfs']] as const) {
      assert.equal(at(mp)?.fstype, fstype, mp);
    }
    assert.ok(at('/sys')?.options?.includes('ro'), '/sys ro');
    assert.deepEqual(at('/dev')?.superOptions, ['size=65536k', 'mode=755']);
    assert.deepEqual(at('/dev/pts')?.superOptions, ['gid=5', 'mode=620', 'ptmxmode=666']);
    // No host mount shows through (the host has /mnt/... and /sys/fs/cgroup/unified).
    assert.ok(mounts.every((m) => m.mountPoint === '/' || /^\/(proc|dev|sys)(\/|$)/.test(m.mountPoint)), mounts.map((m) => m.mountPoint).join(' '));
  },
});

conformanceCase('a bind mount and a tmpfs from the spec', {
  spec: (s) => {
    s.mounts!.push(
      { destination: '/mnt', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=1m', 'mode=700'] },
      { destination: '/opt', type: 'bind', source: '/etc', options: ['rbind', 'ro'] },
    );
  },
  observe: (r, ctx) => normaliseMounts(report(r).mounts, mountCtx(ctx)).filter((m) => m.mountPoint === '/mnt' || m.mountPoint === '/opt'),
  expect: (mounts) => {
    assert.deepEqual(mounts[0], { mountPoint: '/mnt', fstype: 'tmpfs', source: 'tmpfs', root: '/', options: ['rw', 'nosuid', 'nodev', 'relatime'], superOptions: ['size=1024k', 'mode=700'] });
    assert.equal(mounts[1]?.mountPoint, '/opt');
    assert.equal(mounts[1]?.root, '/etc');
    assert.ok(mounts[1]?.options?.includes('ro'));
  },
});

conformanceCase('namespaces differ from the host\'s exactly for the spec\'s types', {
  spec: (s) => {
    s.linux!.namespaces!.push({ type: 'cgroup' });
  },
  observe: (r) => namespacesDifferingFromHost(report(r).namespaces, hostNamespaces()),
  expect: (diff, ctx) => {
    const want = new Set(ctx.bundle.spec.linux!.namespaces!.map((n) => n.type));
    for (const [entry, differs] of Object.entries(diff)) {
      assert.equal(differs, want.has(NS_ENTRY_TO_OCI[entry] ?? entry), `${entry}: ${differs ? 'differs from' : 'same as'} the host's`);
    }
  },
});

conformanceCase('cgroup membership is the spec\'s cgroupsPath in every v1 hierarchy', {
  observe: (r) => normaliseCgroupLines(report(r).cgroup),
  expect: (lines, ctx) => {
    assert.ok(lines && lines.length > 0);
    for (const l of lines!) assert.ok(l.endsWith(`:${ctx.bundle.spec.linux!.cgroupsPath}`), l);
  },
  compare: (lines, ctx) => lines!.map((l) => l.replace(ctx.bundle.spec.linux!.cgroupsPath!, '<cgroupsPath>')),
});

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

conformanceCase('capabilities of runc\'s default spec (3, also ambient) and no_new_privs', {
  observe: (r) => report(r).status,
  expect: (st) => {
    const m = capMask(DEFAULT_CAPS);
    assert.equal(m, '0000000020000420');
    // The spec lists the three as ambient too, but an ambient capability must also be
    // inheritable and the spec's inheritable set is empty: the kernel keeps CapAmb empty.
    assert.deepEqual([st.CapEff, st.CapPrm, st.CapBnd, st.CapAmb, st.CapInh], [m, m, m, '0000000000000000', '0000000000000000']);
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(st.Seccomp, '0');
  },
});

/** Docker's default capability set. */
const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

conformanceCase('Docker\'s 14 default capabilities give CapEff 00000000a80425fb', {
  spec: (s) => {
    s.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS, inheritable: [], ambient: [] };
    s.process.noNewPrivileges = false;
  },
  observe: (r) => report(r).status,
  expect: (st) => {
    assert.equal(capMask(DOCKER_CAPS), '00000000a80425fb');
    assert.equal(st.CapEff, '00000000a80425fb');
    assert.equal(st.CapPrm, '00000000a80425fb');
    assert.equal(st.CapBnd, '00000000a80425fb');
    assert.equal(st.CapAmb, '0000000000000000');
    assert.equal(st.CapInh, '0000000000000000');
    assert.equal(st.NoNewPrivs, '0');
  },
});

/** Debian's containers seccomp profile in OCI form, for a container with Docker's 14 capabilities. */
const DEBIAN_PROFILE = '/usr/share/containers/seccomp.json';
const debianSeccomp = () => dockerProfileToOci(loadSeccompProfile(DEBIAN_PROFILE), { capabilities: DOCKER_CAPS });

conformanceCase('Debian\'s seccomp.json (dockerProfileToOci) puts the process in filter mode (Seccomp: 2)', {
  spec: (s) => {
    s.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS, inheritable: [], ambient: [] };
    s.linux!.seccomp = debianSeccomp();
  },
  observe: (r) => {
    const st = report(r).status;
    return { Seccomp: st.Seccomp, filters: Number(st.Seccomp_filters) > 0, NoNewPrivs: st.NoNewPrivs, CapEff: st.CapEff };
  },
  expect: (o) => assert.deepEqual(o, { Seccomp: '2', filters: true, NoNewPrivs: '1', CapEff: '00000000a80425fb' }),
});

/** x86_64 personality(2); the profile allows only a few personas, ADDR_NO_RANDOMIZE is not one. */
const NR_PERSONALITY = 135;
const ADDR_NO_RANDOMIZE = '0x0040000';
const notX64 = process.arch !== 'x64' && `syscall numbers here are x86_64, this is ${process.arch}`;

function syscallOutcome(r: Parameters<typeof report>[0]) {
  assertExit(r, 0);
  const s = parseProbeOutput<ProbeSyscallReport>(r.stdout, 'syscall');
  return { ret: s.ret, errno: s.errno };
}

conformanceCase('Debian\'s seccomp.json answers a call it does not list with its defaultErrnoRet (ENOSYS)', {
  spec: (s) => {
    s.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS, inheritable: [], ambient: [] };
    s.linux!.seccomp = debianSeccomp();
    s.process.args = ['/probe', 'syscall', String(NR_PERSONALITY), ADDR_NO_RANDOMIZE];
  },
  skip: notX64,
  observe: syscallOutcome,
  expect: (o) => assert.deepEqual(o, { ret: -1, errno: 'ENOSYS' }),
});

conformanceCase('Debian\'s seccomp.json allows a call it lists with matching arguments', {
  spec: (s) => {
    s.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS, inheritable: [], ambient: [] };
    s.linux!.seccomp = debianSeccomp();
    // personality(0xffffffff) only queries the current persona (0, PER_LINUX).
    s.process.args = ['/probe', 'syscall', String(NR_PERSONALITY), '0xffffffff'];
  },
  skip: notX64,
  observe: syscallOutcome,
  expect: (o) => assert.deepEqual(o, { ret: 0, errno: null }),
});

conformanceCase('control: without linux.seccomp the same personality call succeeds', {
  spec: (s) => {
    s.process.args = ['/probe', 'syscall', String(NR_PERSONALITY), ADDR_NO_RANDOMIZE];
  },
  skip: notX64,
  observe: syscallOutcome,
  expect: (o) => assert.deepEqual(o, { ret: 0, errno: null }),
});

/** A small hand-written OCI profile whose effect is exact: mkdir/mkdirat fail with EPERM. */
const SMALL_SECCOMP = {
  defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
};

conformanceCase('the seccomp filter applies: mkdir fails with EPERM, other calls work', {
  spec: (s) => {
    s.linux!.seccomp = SMALL_SECCOMP;
    // /dev/shm is a writable tmpfs even with the read-only root.
    s.process.args = ['/bin/sh', '-c', 'mkdir /dev/shm/d; echo "mkdir=$?"; touch /dev/shm/f; echo "touch=$?"'];
  },
  observe: (r) => ({ code: r.code, stdout: r.stdout, stderr: r.stderr }),
  expect: (o) => {
    assert.equal(o.stdout, 'mkdir=1\ntouch=0\n');
    assert.match(o.stderr, /Operation not permitted/);
  },
});

conformanceCase('masked paths read empty', {
  observe: (r) => report(r).paths,
  expect: (paths, ctx) => {
    // Kernels built without CONFIG_PROC_KCORE (this one) have no /proc/kcore to mask.
    if (paths['/proc/kcore']?.exists) assert.equal(paths['/proc/kcore'].bytesRead, 0, '/proc/kcore');
    assert.equal(paths['/proc/keys']?.text, '', '/proc/keys');
    assert.deepEqual(paths['/sys/firmware']?.entries, [], '/sys/firmware');
    for (const p of ctx.bundle.spec.linux!.maskedPaths!) {
      const o = paths[p];
      if (!o?.exists) continue; // not on this kernel
      if (o.type === 'dir') assert.deepEqual(o.entries, [], p);
      else assert.equal(o.bytesRead, 0, p);
    }
  },
});

conformanceCase('without maskedPaths, /proc/keys and /sys/firmware show through', {
  spec: (s) => {
    s.linux!.maskedPaths = [];
  },
  observe: (r) => {
    const p = report(r).paths;
    return { keysNonEmpty: (p['/proc/keys']?.bytesRead ?? 0) > 0, firmwareNonEmpty: (p['/sys/firmware']?.entries?.length ?? 0) > 0 };
  },
  // The control for the case above: the same reads do see data when nothing is masked.
  expect: (o) => assert.deepEqual(o, { keysNonEmpty: true, firmwareNonEmpty: true }),
});

conformanceCase('read-only paths: /proc/sys and the rest refuse writes (EROFS)', {
  observe: (r) => {
    const rep = report(r);
    return { readonly: rep.readonly, procSysWrite: rep.procSysWrite };
  },
  expect: (o, ctx) => {
    assert.deepEqual(o.procSysWrite, { ok: false, errno: 'EROFS' });
    for (const p of ctx.bundle.spec.linux!.readonlyPaths!) {
      const v = o.readonly[p];
      if (v?.exists) assert.equal(v.mountReadOnly, true, p);
    }
    assert.equal(o.readonly['/sys']?.mountReadOnly, true);
  },
});

conformanceCase('without readonlyPaths, /proc/sys accepts writes', {
  spec: (s) => {
    s.linux!.readonlyPaths = [];
  },
  observe: (r) => {
    const rep = report(r);
    return { procSys: rep.readonly['/proc/sys'], procSysWrite: rep.procSysWrite };
  },
  expect: (o) => assert.deepEqual(o, { procSys: { exists: true, mountReadOnly: false }, procSysWrite: { ok: true, errno: null } }),
});

conformanceCase('root.readonly: creating a file at / fails with EROFS', {
  spec: (s) => {
    s.root.readonly = true;
  },
  observe: (r) => report(r).rootWrite,
  expect: (o) => assert.deepEqual(o, { ok: false, errno: 'EROFS' }),
});

conformanceCase('root.readonly false: / is writable', {
  spec: (s) => {
    s.root.readonly = false;
  },
  observe: (r) => report(r).rootWrite,
  expect: (o) => assert.deepEqual(o, { ok: true, errno: null }),
});

conformanceCase('probe write into a read-only root reports EROFS from open', {
  spec: (s) => {
    s.process.args = ['/probe', 'write', '/etc/written-by-probe'];
  },
  observe: (r) => {
    assertExit(r, 0);
    const w = parseProbeOutput<ProbeWriteReport>(r.stdout, 'write');
    return { ok: w.ok, errno: w.errno, syscall: w.syscall };
  },
  expect: (o) => assert.deepEqual(o, { ok: false, errno: 'EROFS', syscall: 'open' }),
});

const RLIMITS: NonNullable<OciSpec['process']['rlimits']> = [
  { type: 'RLIMIT_NOFILE', soft: 4096, hard: 8192 },
  { type: 'RLIMIT_NPROC', soft: 512, hard: 1024 },
  { type: 'RLIMIT_CORE', soft: 0, hard: 4096 },
];

conformanceCase('rlimits are the spec\'s', {
  spec: (s) => {
    s.process.rlimits = RLIMITS;
  },
  observe: (r) => report(r).rlimits,
  expect: (l) => {
    assert.deepEqual(l.nofile, { soft: 4096, hard: 8192 });
    assert.deepEqual(l.nproc, { soft: 512, hard: 1024 });
    assert.deepEqual(l.core, { soft: 0, hard: 4096 });
  },
});

conformanceCase('user namespace: uid_map and gid_map are the spec\'s mappings', {
  spec: (s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    // A cgroup v1 hierarchy cannot be mounted from inside a user namespace that does not own it.
    s.mounts = s.mounts!.filter((m) => m.destination !== '/sys/fs/cgroup');
  },
  observe: (r) => {
    const rep = report(r);
    return { uidMap: rep.uidMap, gidMap: rep.gidMap, uid: rep.uid, gid: rep.gid, capEff: rep.status.CapEff };
  },
  expect: (o) =>
    assert.deepEqual(o, {
      uidMap: [[0, 100000, 65536]],
      gidMap: [[0, 100000, 65536]],
      uid: 0,
      gid: 0,
      capEff: capMask(DEFAULT_CAPS),
    }),
});

conformanceCase('without a user namespace the maps are the identity', {
  observe: (r) => {
    const rep = report(r);
    return { uidMap: rep.uidMap, gidMap: rep.gidMap };
  },
  expect: (o) => assert.deepEqual(o, { uidMap: [[0, 0, 4294967295]], gidMap: [[0, 0, 4294967295]] }),
});

conformanceCase('/dev holds the OCI default devices and links', {
  observe: (r, ctx) => normaliseDev(report(r).dev, ctx.rt.name),
  expect: (dev) => {
    const at = (p: string) => dev.find((d) => d.path === p);
    for (const [p, mm] of [['/dev/null', '1:3'], ['/dev/zero', '1:5'], ['/dev/full', '1:7'], ['/dev/random', '1:8'], ['/dev/urandom', '1:9'], ['/dev/tty', '5:0']] as const) {
      assert.deepEqual({ type: at(p)?.type, device: at(p)?.device, mode: at(p)?.mode }, { type: 'char', device: mm, mode: '0666' }, p);
    }
    for (const [p, target] of [['/dev/fd', '/proc/self/fd'], ['/dev/stdin', '/proc/self/fd/0'], ['/dev/stdout', '/proc/self/fd/1'], ['/dev/stderr', '/proc/self/fd/2'], ['/dev/ptmx', 'pts/ptmx']] as const) {
      assert.equal(at(p)?.target, target, p);
    }
    // Nothing of the host's /dev (e.g. block devices, /dev/kmsg) leaks in.
    assert.ok(!dev.some((d) => d.type === 'block'), 'no block devices');
    assert.equal(at('/dev/kmsg'), undefined);
  },
});
