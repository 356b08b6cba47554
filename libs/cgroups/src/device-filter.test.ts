import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInvalidArgument } from '@berth/errors';
import { BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, BPF_F_REPLACE } from '@berth/native';
import { RecordingSyscalls } from '@berth/native/testing';
import { compileDeviceFilter, disassembleDeviceFilter, installDeviceFilter, type DeviceBpf } from './device-filter.js';
import { createCgroupManager } from './manager.js';
import type { DeviceRule } from './resources.js';
import { fakeHost } from './testing.js';

// ---- An independent decoder and interpreter of the emitted bytes -------------------------
// Written from the eBPF encoding (struct bpf_insn, include/uapi/linux/bpf.h), not from the
// compiler's tables, so a wrong opcode, register or jump offset changes a verdict below.

interface Dev {
  type: 'b' | 'c';
  major: number;
  minor: number;
  /** Bits: m 1, r 2, w 4. */
  access: number;
}

const CTX = Symbol('ctx');

function execute(prog: Buffer, dev: Dev): number {
  assert.equal(prog.length % 8, 0, 'whole instructions');
  const n = prog.length / 8;
  const mem = [(dev.access << 16) | (dev.type === 'b' ? 1 : 2), dev.major, dev.minor];
  const regs: (number | typeof CTX | undefined)[] = new Array(11).fill(undefined);
  regs[1] = CTX;
  const num = (r: number): number => {
    const v = regs[r];
    if (typeof v !== 'number') throw new Error(`r${r} read before it holds a number`);
    return v;
  };
  for (let pc = 0, steps = 0; ; pc++, steps++) {
    if (pc < 0 || pc >= n) throw new Error(`pc ${pc} outside the program (${n} instructions)`);
    if (steps > 4 * n) throw new Error('no exit reached');
    const at = pc * 8;
    const code = prog[at]!;
    const dst = prog[at + 1]! & 0x0f;
    const src = prog[at + 1]! >> 4;
    const off = prog.readInt16LE(at + 2);
    const imm = prog.readInt32LE(at + 4);
    const jump = (taken: boolean): void => {
      if (off < 0) throw new Error(`backward jump at ${pc}`);
      if (taken) pc += off;
    };
    switch (code) {
      case 0x61: // ldx word [src + off]
        if (regs[src] !== CTX) throw new Error(`load through r${src}, not the context`);
        if (off % 4 !== 0 || off < 0 || off > 8) throw new Error(`load at context offset ${off}`);
        regs[dst] = mem[off / 4]! >>> 0;
        break;
      case 0x54: // and32 imm
        regs[dst] = (num(dst) & imm) >>> 0;
        break;
      case 0x74: // rsh32 imm
        regs[dst] = num(dst) >>> imm;
        break;
      case 0xbc: // mov32 reg
        regs[dst] = num(src) >>> 0;
        break;
      case 0xb7: // mov64 imm
        regs[dst] = imm;
        break;
      case 0x55: // jne imm (64-bit compare with the sign-extended immediate)
        jump(num(dst) !== imm);
        break;
      case 0x5d: // jne reg
        jump(num(dst) !== num(src));
        break;
      case 0x95: // exit
        return num(0);
      default:
        throw new Error(`unknown opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
}

/** The rule semantics, stated plainly: default deny, the last matching rule decides. */
function reference(rules: readonly DeviceRule[], dev: Dev): boolean {
  let verdict = false;
  for (const r of rules) {
    const type = r.type ?? 'a';
    if (type !== 'a' && type !== dev.type) continue;
    const any = (v: number | null | undefined): boolean => v === undefined || v === null || v === -1;
    if (!any(r.major) && r.major !== dev.major) continue;
    if (!any(r.minor) && r.minor !== dev.minor) continue;
    const text = r.access || 'rwm';
    const bits = (text.includes('m') ? 1 : 0) | (text.includes('r') ? 2 : 0) | (text.includes('w') ? 4 : 0);
    if ((dev.access & bits) !== dev.access) continue;
    verdict = r.allow;
  }
  return verdict;
}

const MAJORS = [0, 1, 5, 10, 136, 254];
const MINORS = [0, 1, 3, 5, 7, 200];
function* devices(): Generator<Dev> {
  for (const type of ['b', 'c'] as const)
    for (const major of MAJORS) for (const minor of MINORS) for (let access = 1; access <= 7; access++) yield { type, major, minor, access };
}

/** Every sample device against the program and the reference; the mismatches, described. */
function mismatches(rules: readonly DeviceRule[], prog = compileDeviceFilter(rules)): string[] {
  const out: string[] = [];
  for (const dev of devices()) {
    const got = execute(prog, dev);
    const want = reference(rules, dev) ? 1 : 0;
    if (got !== want) out.push(`${dev.type} ${dev.major}:${dev.minor} access ${dev.access}: program ${got}, rules ${want}`);
  }
  return out;
}

// Docker's default device rules (oci defaults): deny all first, then mknod of any node, then
// the usual character devices.
const dockerDefaults: DeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'b', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

test('device filter: golden listing of a small rule set', () => {
  const rules: DeviceRule[] = [
    { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 3, access: 'rw' },
    { allow: true, type: 'b', major: 8, minor: null, access: 'r' },
  ];
  assert.deepEqual(disassembleDeviceFilter(compileDeviceFilter(rules)), [
    '  0: ldxw r2, [r1+0]',
    '  1: and32 r2, 0xffff',
    '  2: ldxw r3, [r1+0]',
    '  3: rsh32 r3, 16',
    '  4: ldxw r4, [r1+4]',
    '  5: ldxw r5, [r1+8]',
    // rules[2], b 8:* r
    '  6: jne r2, 1, -> 13',
    '  7: mov32 r1, r3',
    '  8: and32 r1, 0x2',
    '  9: jne r1, r3, -> 13',
    ' 10: jne r4, 8, -> 13',
    ' 11: mov r0, 1',
    ' 12: exit',
    // rules[1], c 1:3 rw
    ' 13: jne r2, 2, -> 21',
    ' 14: mov32 r1, r3',
    ' 15: and32 r1, 0x6',
    ' 16: jne r1, r3, -> 21',
    ' 17: jne r4, 1, -> 21',
    ' 18: jne r5, 3, -> 21',
    ' 19: mov r0, 0',
    ' 20: exit',
    // rules[0], c 1:5 rwm
    ' 21: jne r2, 2, -> 26',
    ' 22: jne r4, 1, -> 26',
    ' 23: jne r5, 5, -> 26',
    ' 24: mov r0, 1',
    ' 25: exit',
    // default deny
    ' 26: mov r0, 0',
    ' 27: exit',
  ]);
  // The raw bytes of a few instructions, as the kernel reads them.
  const bytes = compileDeviceFilter(rules);
  assert.equal(bytes.subarray(4 * 8, 5 * 8).toString('hex'), '6114040000000000'); // ldxw r4, [r1+4]
  assert.equal(bytes.subarray(6 * 8, 7 * 8).toString('hex'), '5502060001000000'); // jne r2, 1, +6
  assert.equal(bytes.subarray(9 * 8, 10 * 8).toString('hex'), '5d31030000000000'); // jne r1, r3, +3
  assert.deepEqual(mismatches(rules), []);
});

test('device filter: golden listings of deny-all, privileged and the Docker defaults', () => {
  const prologue = ['  0: ldxw r2, [r1+0]', '  1: and32 r2, 0xffff', '  2: ldxw r3, [r1+0]', '  3: rsh32 r3, 16', '  4: ldxw r4, [r1+4]', '  5: ldxw r5, [r1+8]'];
  assert.deepEqual(disassembleDeviceFilter(compileDeviceFilter([])), [...prologue, '  6: mov r0, 0', '  7: exit']);
  // Privileged: one catch-all allow; nothing after it can decide.
  assert.deepEqual(disassembleDeviceFilter(compileDeviceFilter([{ allow: true, access: 'rwm' }])), [...prologue, '  6: mov r0, 1', '  7: exit']);
  const docker = disassembleDeviceFilter(compileDeviceFilter(dockerDefaults));
  // Prologue, 8 blocks c M:m rwm, c 136:* rwm, c|b *:* m, then the leading deny-all as the
  // last block: it matches everything, so there is no default after it.
  assert.equal(docker.length, 6 + 8 * 5 + 4 + 2 * 6 + 2);
  assert.deepEqual(docker.slice(6, 11), ['  6: jne r2, 2, -> 11', '  7: jne r4, 10, -> 11', '  8: jne r5, 200, -> 11', '  9: mov r0, 1', ' 10: exit']);
  assert.deepEqual(docker.slice(-2), [` ${docker.length - 2}: mov r0, 0`, ` ${docker.length - 1}: exit`]);
  for (const rules of [[], [{ allow: true, access: 'rwm' }], dockerDefaults] as DeviceRule[][]) assert.deepEqual(mismatches(rules), []);
});

test('device filter: the program decides as the rules do (last match wins) for every sample device', () => {
  const cases: DeviceRule[][] = [
    dockerDefaults,
    // Allow all, then take /dev/null away again.
    [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }],
    // A deny before an allow is overruled by it.
    [{ allow: false, type: 'c', major: 1, minor: 3 }, { allow: true, type: 'c', major: 1, minor: -1, access: 'rw' }],
    // Narrow accesses: read-only and write-only of the same device.
    [{ allow: true, type: 'c', major: 5, minor: 0, access: 'r' }, { allow: true, type: 'c', major: 5, minor: 0, access: 'w' }],
    // Wildcard type with a fixed major, and the access defaulting to rwm.
    [{ allow: true, major: 10, minor: null }, { allow: false, type: 'b', major: 10, minor: 1, access: '' }],
  ];
  for (const rules of cases) assert.deepEqual(mismatches(rules), [], JSON.stringify(rules));
  // The access rule of read-only + write-only: O_RDWR (read|write at once) is denied.
  const prog = compileDeviceFilter(cases[3]!);
  assert.equal(execute(prog, { type: 'c', major: 5, minor: 0, access: 2 }), 1);
  assert.equal(execute(prog, { type: 'c', major: 5, minor: 0, access: 6 }), 0);
});

test('device filter: random rule lists agree with the reference', () => {
  let seed = 0x2545f491;
  const rand = (k: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % k;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  for (let round = 0; round < 150; round++) {
    const rules: DeviceRule[] = Array.from({ length: rand(7) }, () => ({
      allow: rand(3) > 0,
      type: pick(['a', 'b', 'c', undefined] as const),
      major: pick([-1, null, undefined, ...MAJORS]),
      minor: pick([-1, null, undefined, ...MINORS]),
      access: pick(['r', 'w', 'm', 'rw', 'rm', 'wm', 'rwm', '', undefined]),
    }));
    assert.deepEqual(mismatches(rules), [], JSON.stringify(rules));
  }
});

test('device filter: the check catches a jump off by one and a swapped verdict', () => {
  const rules: DeviceRule[] = [{ allow: true, type: 'c', major: 1, minor: 5 }, { allow: false, type: 'c', major: 1, minor: 3, access: 'rw' }];
  const prog = compileDeviceFilter(rules);
  assert.deepEqual(mismatches(rules, prog), []);
  // Every jump's offset one short, in turn: each changes some verdict (or runs off the program).
  let jumps = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    if (prog[pc * 8] !== 0x55 && prog[pc * 8] !== 0x5d) continue;
    jumps++;
    const bad = Buffer.from(prog);
    bad.writeInt16LE(bad.readInt16LE(pc * 8 + 2) - 1, pc * 8 + 2);
    let caught: boolean;
    try {
      caught = mismatches(rules, bad).length > 0;
    } catch {
      caught = true;
    }
    assert.ok(caught, `an offset one short at ${pc} went unnoticed`);
  }
  assert.ok(jumps >= 6);
  const flipped = Buffer.from(prog);
  flipped.writeInt32LE(1, 12 * 8 + 4); // the deny of c 1:3 made an allow
  assert.equal(disassembleDeviceFilter(flipped)[12], ' 12: mov r0, 1');
  assert.ok(mismatches(rules, flipped).length > 0);
});

test('device filter: rules the program cannot express are refused as invalid arguments', () => {
  assert.throws(() => compileDeviceFilter([{ allow: true, type: 'x' as 'a' }]), isInvalidArgument);
  assert.throws(() => compileDeviceFilter([{ allow: true, access: 'rwx' }]), (e: unknown) => isInvalidArgument(e) && /devices\[0\]\.access/.test((e as Error).message));
  assert.throws(() => compileDeviceFilter([{ allow: true }, { allow: true, major: 2 ** 31 }]), (e: unknown) => isInvalidArgument(e) && /devices\[1\]\.major/.test((e as Error).message));
  assert.throws(() => compileDeviceFilter([{ allow: true, minor: 1.5 }]), isInvalidArgument);
});

// ---- installDeviceFilter on the recording fake -------------------------------------------

/** RecordingSyscalls for the bpf calls, plus directory fds; tracks which fds are still open. */
function fakeBpf(): { sys: RecordingSyscalls; bpf: DeviceBpf; open: Set<number>; dirFd: (path: string) => number } {
  const sys = new RecordingSyscalls();
  const open = new Set<number>();
  const dirs = new Map<string, number>();
  const dirFd = (path: string): number => {
    if (!dirs.has(path)) dirs.set(path, 500 + dirs.size);
    return dirs.get(path)!;
  };
  const opened = (fd: number): number => {
    open.add(fd);
    return fd;
  };
  const bpf: DeviceBpf = {
    bpfProgLoadCgroupDevice: (insns, license) => opened(sys.bpfProgLoadCgroupDevice(insns, license)),
    bpfProgAttach: (p, t, a, f, r) => sys.bpfProgAttach(p, t, a, f, r),
    bpfProgDetach: (p, t, a) => sys.bpfProgDetach(p, t, a),
    bpfProgQuery: (t, a) => sys.bpfProgQuery(t, a),
    bpfProgGetFdById: (id) => opened(sys.bpfProgGetFdById(id)),
    openDir: (path) => opened(dirFd(path)),
    close: (fd) => {
      assert.ok(open.delete(fd), `close of fd ${fd} that is not open`);
    },
  };
  return { sys, bpf, open, dirFd };
}

const denyNull: DeviceRule[] = [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }];
const denyZero: DeviceRule[] = [{ allow: true, access: 'rwm' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'rwm' }];

test('installDeviceFilter: attaches with ALLOW_MULTI, then replaces the one program atomically; every fd closed', () => {
  const { sys, bpf, open, dirFd } = fakeBpf();
  const fd = dirFd('/cg/c1');
  assert.deepEqual(installDeviceFilter(bpf, '/cg/c1', denyNull).replaced, []);
  const [first] = sys.callsTo('bpfProgAttach');
  assert.deepEqual(first!.args.slice(1, 4), [fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI]);
  assert.deepEqual(sys.callsTo('bpfProgLoadCgroupDevice')[0]!.args[1], 'Apache');
  assert.deepEqual(sys.bpfAttached(fd), [compileDeviceFilter(denyNull)]);
  assert.deepEqual([...open], []);

  sys.calls.length = 0;
  assert.deepEqual(installDeviceFilter(bpf, '/cg/c1', denyZero).replaced, [1]);
  assert.deepEqual(sys.names(), ['bpfProgLoadCgroupDevice', 'bpfProgQuery', 'bpfProgGetFdById', 'bpfProgAttach']);
  const replace = sys.callsTo('bpfProgAttach')[0]!.args;
  assert.equal(replace[3], BPF_F_ALLOW_MULTI | BPF_F_REPLACE);
  assert.equal(replace[4], 1002); // fds 1000, 1001: the two loads; 1002: program 1 by id
  assert.deepEqual(sys.bpfAttached(fd), [compileDeviceFilter(denyZero)]);
  assert.deepEqual([...open], []);
});

test('installDeviceFilter: several old programs, or no BPF_F_REPLACE: attach first, then detach the old ones', () => {
  const { sys, bpf, open, dirFd } = fakeBpf();
  const fd = dirFd('/cg/c2');
  installDeviceFilter(bpf, '/cg/c2', denyNull);
  // A second program beside ours (attached by hand), then a new install removes both.
  const other = sys.bpfProgLoadCgroupDevice(compileDeviceFilter([]), 'Apache');
  sys.bpfProgAttach(other, fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI);
  sys.calls.length = 0;
  assert.deepEqual(installDeviceFilter(bpf, '/cg/c2', denyZero).replaced, [1, 2]);
  assert.deepEqual(sys.names(), ['bpfProgLoadCgroupDevice', 'bpfProgQuery', 'bpfProgAttach', 'bpfProgGetFdById', 'bpfProgDetach', 'bpfProgGetFdById', 'bpfProgDetach']);
  assert.deepEqual(sys.bpfAttached(fd), [compileDeviceFilter(denyZero)]);

  // A kernel that refuses BPF_F_REPLACE (EINVAL): the same attach-then-detach path.
  sys.failOn('bpfProgAttach', 'EINVAL', (_p, _t, _a, flags) => (flags & BPF_F_REPLACE) !== 0);
  sys.calls.length = 0;
  installDeviceFilter(bpf, '/cg/c2', denyNull);
  assert.deepEqual(sys.names(), ['bpfProgLoadCgroupDevice', 'bpfProgQuery', 'bpfProgGetFdById', 'bpfProgAttach', 'bpfProgAttach', 'bpfProgGetFdById', 'bpfProgDetach']);
  assert.deepEqual(sys.bpfAttached(fd), [compileDeviceFilter(denyNull)]);
  assert.deepEqual([...open], []);
});

test('installDeviceFilter: a refused load leaves the old program attached and no fd open', () => {
  const { sys, bpf, open, dirFd } = fakeBpf();
  const fd = dirFd('/cg/c3');
  installDeviceFilter(bpf, '/cg/c3', denyNull);
  sys.failOn('bpfProgLoadCgroupDevice', 'EPERM');
  assert.throws(() => installDeviceFilter(bpf, '/cg/c3', denyZero), (e: unknown) => /device filter on \/cg\/c3: bpf_prog_load: EPERM/.test((e as Error).message));
  assert.deepEqual(sys.bpfAttached(fd), [compileDeviceFilter(denyNull)]);
  assert.deepEqual([...open], []);
});

// ---- The v2 manager ----------------------------------------------------------------------

test('v2 manager: device rules attach a filter to the leaf at create and replace it on update; v1 is untouched', async () => {
  const host = fakeHost('v2');
  const { sys, bpf, open, dirFd } = fakeBpf();
  const manager = await createCgroupManager({ fs: host.fs, killer: host.killer, deviceBpf: bpf });
  const plain = await manager.create('berth/c0', { pids: { limit: 10 } });
  assert.deepEqual(plain.warnings, []);
  assert.deepEqual(sys.calls, [], 'no device rules: no program');

  const g = await manager.create('berth/c1', { devices: dockerDefaults });
  assert.deepEqual(g.warnings, []);
  const leaf = dirFd('/sys/fs/cgroup/berth/c1');
  assert.deepEqual(sys.bpfAttached(leaf), [compileDeviceFilter(dockerDefaults)]);
  await g.apply({ devices: [{ allow: true, access: 'rwm' }] });
  assert.deepEqual(sys.bpfAttached(leaf), [compileDeviceFilter([{ allow: true, access: 'rwm' }])]);
  assert.deepEqual([...open], []);
  // Nothing was written to the cgroup filesystem for the devices.
  assert.deepEqual(host.fs.writes().filter((w) => /devices/.test(w.path)), []);

  // A hybrid host keeps the v1 devices controller and never calls bpf.
  const hybrid = fakeHost('hybrid');
  const v1 = fakeBpf();
  const m1 = await createCgroupManager({ fs: hybrid.fs, killer: hybrid.killer, deviceBpf: v1.bpf });
  await m1.create('berth/c1', { devices: dockerDefaults });
  assert.deepEqual(v1.sys.calls, []);
  assert.ok(hybrid.fs.writes().some((w) => w.path.endsWith('/devices.deny') && w.data === 'a'));
});
