/**
 * berth-runtime must refuse bad bundles: exit non-zero, name the field at fault, and leave
 * nothing behind (no mount, process, cgroup, state entry or netns file), checked before any
 * forced delete. These are berth-runtime's contract; runc and crun accept some of them
 * (BERTH_CONFORMANCE_BAD_INPUT_RUNTIMES=runc,crun runs them there too, to prove the harness).
 */
import { rm, symlink, unlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { runRuntime, describeRun } from '@berth/test-support';
import { badInputCase, describeRuntimes } from '../../src/index.js';

describeRuntimes();

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
