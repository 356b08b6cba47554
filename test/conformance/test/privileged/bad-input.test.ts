/**
 * berth-runtime must refuse bad bundles: exit non-zero, name the field at fault, and leave
 * nothing behind (no mount, process, cgroup, state entry or netns file), checked before any
 * forced delete. These are berth-runtime's contract; runc and crun accept some of them
 * (BERTH_CONFORMANCE_BAD_INPUT_RUNTIMES=runc,crun runs them there too, to prove the harness).
 */
import { readFile, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { runRuntime, describeRun, type OciSpec, type RunResult } from '@berth/test-support';
import { badInputCase, describeRuntimes } from '../../src/index.js';

describeRuntimes();

/** Several failed runs as one: non-zero only if every one was; their outputs in order. */
function combine(all: RunResult[]): RunResult {
  const ok = all.find((r) => r.code === 0);
  return {
    ...all[0]!,
    code: ok ? 0 : 1,
    stdout: all.map((r) => r.stdout).join('\n'),
    stderr: `${ok ? `succeeded: ${ok.argv.join(' ')}\n` : ''}${all.map((r) => r.stderr).join('\n')}`,
  };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

badInputCase('missing config.json', {
  prepare: async (ctx) => unlink(ctx.bundle.configPath),
  mentions: () => [/config\.json/],
});

badInputCase('malformed config.json', {
  prepare: async (ctx) => writeFile(ctx.bundle.configPath, '{"ociVersion": "1.0.2", "process": {"args": ["/probe"],'),
  mentions: () => [/config\.json/],
});

badInputCase('unknown namespace type', {
  spec: (s) => {
    s.linux!.namespaces!.push({ type: 'bogus' });
  },
  mentions: () => [/namespace/i, /bogus/],
});

badInputCase('mount destination escaping the rootfs with ..', {
  spec: (s) => {
    // Joined naively to the rootfs this is the bundle's sibling escape-target/.
    s.mounts!.push({ destination: '/../../escape-target', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  },
  mentions: () => [/destination|mounts/, /\/\.\.\/\.\.\/escape-target/],
});

badInputCase('mount destination escaping the rootfs through a symlink', {
  prepare: async (ctx) => symlink('../../escape-target', path.join(ctx.bundle.rootfs, 'evil')),
  spec: (s) => {
    s.mounts!.push({ destination: '/evil', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  },
  mentions: () => [/destination|mounts/, /\/evil/],
});

badInputCase('/proc is a symlink in the rootfs', {
  prepare: async (ctx) => {
    await rm(path.join(ctx.bundle.rootfs, 'proc'), { recursive: true });
    await symlink('../../escape-target', path.join(ctx.bundle.rootfs, 'proc'));
  },
  mentions: () => [/\/proc/, /symlink/i],
});

badInputCase('cwd through /proc/self/fd', {
  spec: (s) => {
    // A descriptor the runtime itself may hold open to a host directory (CVE-2024-21626).
    s.process.cwd = '/proc/self/fd/7';
  },
  mentions: () => [/cwd/, /\/proc\/self\/fd\/7/],
});

// Every descriptor a runtime may hold while it sets the process up, for create and for exec:
// the error names process.cwd and the fd, and the process never runs (so never with a host cwd).
const fdRange = Array.from({ length: 13 }, (_, i) => i + 3);

badInputCase('cwd through /proc/self/fd/3..15 at create', {
  run: async (ctx) => {
    const config = JSON.parse(await readFile(ctx.bundle.configPath, 'utf8')) as OciSpec;
    const all: RunResult[] = [];
    for (const n of fdRange) {
      config.process.cwd = `/proc/self/fd/${n}`;
      await writeFile(ctx.bundle.configPath, JSON.stringify(config));
      const r = await runRuntime(ctx.rt, ['create', '--bundle', ctx.bundle.dir, `${ctx.id}-${n}`], { until: 'exit' });
      all.push(r);
      if (r.code === 0) await runRuntime(ctx.rt, ['delete', '--force', `${ctx.id}-${n}`]);
    }
    return combine(all);
  },
  mentions: () => [/process\.cwd/, ...fdRange.map((n) => new RegExp(`/proc/self/fd/${n}\\b`))],
});

badInputCase('cwd through /proc/self/fd/3..15 at exec', {
  spec: (s) => {
    s.process.args = ['/probe', 'sleep'];
  },
  run: async (ctx) => {
    for (const verb of [['create', '--bundle', ctx.bundle.dir, ctx.id], ['start', ctx.id]]) {
      const r = await runRuntime(ctx.rt, verb, { until: 'exit' });
      assert.equal(r.code, 0, describeRun(r));
    }
    const all: RunResult[] = [];
    for (const n of fdRange) {
      // A process that ran would leave its cwd in the container's /tmp.
      all.push(await runRuntime(ctx.rt, ['exec', '--cwd', `/proc/self/fd/${n}`, ctx.id, '/probe', 'write', `/tmp/ran-${n}`], { until: 'exit' }));
    }
    const ran = (await readdir(path.join(ctx.bundle.rootfs, 'tmp')).catch(() => [] as string[])).filter((f) => f.startsWith('ran-'));
    const r = combine(all);
    return ran.length > 0 ? { ...r, code: 0, stderr: `${r.stderr}\nthe process ran for ${ran.join(', ')}` } : r;
  },
  mentions: () => [/process\.cwd/, ...fdRange.map((n) => new RegExp(`/proc/self/fd/${n}\\b`))],
  cleanup: async (ctx) => {
    const d = await runRuntime(ctx.rt, ['delete', '--force', ctx.id]);
    assert.equal(d.code, 0, describeRun(d));
  },
});

badInputCase('a tmpfs mounted over /proc/sys', {
  spec: (s) => {
    s.mounts!.push({ destination: '/proc/sys', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  },
  mentions: () => [/mounts\[\d+\]\.destination/, /\/proc\/sys/, /inside \/proc/],
});

badInputCase('a uid of 4294967296 (2^32, which truncates to root)', {
  spec: (s) => {
    s.process.user = { uid: 4294967296, gid: 0 };
  },
  mentions: () => [/process\.user\.uid/, /4294967296/],
});

badInputCase('duplicate container id', {
  spec: (s) => {
    s.process.args = ['/probe', 'sleep'];
  },
  run: async (ctx) => {
    const first = await runRuntime(ctx.rt, ['create', '--bundle', ctx.bundle.dir, ctx.id], { until: 'exit' });
    assert.equal(first.code, 0, describeRun(first));
    const dup = await runRuntime(ctx.rt, ['create', '--bundle', ctx.bundle.dir, ctx.id], { until: 'exit' });
    // The refused create must not have disturbed the first container.
    const state = await runRuntime(ctx.rt, ['state', ctx.id]);
    assert.equal(state.code, 0, describeRun(state));
    assert.equal((JSON.parse(state.stdout) as { status: string }).status, 'created');
    return dup;
  },
  mentions: (ctx) => [new RegExp(escape(ctx.id)), /exist/i],
  cleanup: async (ctx) => {
    const d = await runRuntime(ctx.rt, ['delete', '--force', ctx.id]);
    assert.equal(d.code, 0, describeRun(d));
  },
});

badInputCase('missing bundle directory', {
  run: (ctx) => runRuntime(ctx.rt, ['create', '--bundle', path.join(ctx.escapeDir, 'no-such-bundle'), ctx.id], { until: 'exit' }),
  mentions: (ctx) => [new RegExp(escape(path.join(ctx.escapeDir, 'no-such-bundle')))],
});
