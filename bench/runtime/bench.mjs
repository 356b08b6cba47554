// bench/runtime: `run` of a busybox bundle running `true`, side by side:
//   berth in-process  libs/runtime spawning berth-shim + berth-init (no Node start), the engine's path
//   berth-runtime     the CLI (includes Node's start)
//   node -e 0         Node's own start and exit: the floor under any Node CLI
//   runc, crun        when installed
// Prints medians (ms). Not a test: figures only. Run through ./run.sh, which puts every runtime
// in the same private mount namespace without the hybrid cgroup2 mount (crun refuses it).
import { spawnSync, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const runs = Number(process.env.BENCH_RUNS ?? 50);
const warmup = 5;

const { Runtime, runtimeCgroups } = await import(join(repo, 'libs/runtime/dist/src/index.js'));
const { createCgroupManager } = await import(join(repo, 'libs/cgroups/dist/src/index.js'));
const { silentLogger } = await import(join(repo, 'libs/log/dist/src/index.js'));
const { makeBusyboxRootfs } = await import(join(repo, 'tools/fixtures/dist/src/index.js'));

const work = mkdtempSync(join(tmpdir(), 'berth-bench-runtime-'));
const bundle = join(work, 'bundle');
await makeBusyboxRootfs(join(bundle, 'rootfs'));
const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
const runc = which('runc');
const crun = which('crun');
// The same config.json for everyone: runc's default spec running `true`.
if (runc) execFileSync(runc, ['spec'], { cwd: bundle });
else execFileSync(join(repo, 'apps/berth-runtime/bin/berth-runtime'), ['spec', '--bundle', bundle]);
const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
spec.process.args = ['true'];
spec.process.terminal = false;
writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));

const stats = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5), min: s[0], max: s[s.length - 1], n: s.length };
};

async function time(fn) {
  const out = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= warmup) out.push(dt);
  }
  return stats(out);
}

function cli(cmd, args) {
  return () => {
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  };
}

const results = [];
const root = join(work, 'state');
const rt = new Runtime({
  root: join(root, 'inproc'), logger: silentLogger(), cgroups: runtimeCgroups(await createCgroupManager()),
  syscalls: () => { throw new Error('not needed for this bundle'); },
});
results.push(['berth in-process (libs/runtime -> shim -> init)', await time(async (i) => {
  const code = await rt.run(`bip-${process.pid}-${i}`, bundle, { stdio: ['ignore', 'ignore', 'ignore'] });
  if (code !== 0) throw new Error(`exit ${code}`);
})]);
const bin = join(repo, 'apps/berth-runtime/bin/berth-runtime');
results.push(['berth-runtime run (CLI)', await time(async (i) => cli(bin, ['--root', join(root, 'cli'), 'run', '--bundle', bundle, `bcl-${process.pid}-${i}`])())]);
// The floor of any Node CLI here: Node's own start and exit, with the launcher's environment
// (bin/berth-runtime runs node through `env -u NODE_EXTRA_CA_CERTS`).
results.push(['node start+exit alone (env -u NODE_EXTRA_CA_CERTS node -e 0)', await time(async () => cli('env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, '-e', '0'])())]);
if (runc) results.push(['runc run', await time(async (i) => cli(runc, ['--root', join(root, 'runc'), 'run', '--bundle', bundle, `rc-${process.pid}-${i}`])())]);
else results.push(['runc run', null]);
if (crun) results.push(['crun run', await time(async (i) => cli(crun, ['--root', join(root, 'crun'), 'run', '--bundle', bundle, `cr-${process.pid}-${i}`])())]);
else results.push(['crun run', null]);

const med = Object.fromEntries(results.map(([k, v]) => [k, v?.median]));
console.log(`runtime bench: ${runs} runs each (+${warmup} warm-up), busybox \`true\`, median/min/max ms`);
for (const [name, s] of results) {
  console.log(s ? `${name.padEnd(50)} ${s.median.toFixed(1).padStart(7)} ${s.min.toFixed(1).padStart(7)} ${s.max.toFixed(1).padStart(7)}` : `${name.padEnd(50)} not installed`);
}
const inproc = med['berth in-process (libs/runtime -> shim -> init)'];
const cliMed = med['berth-runtime run (CLI)'];
if (med['crun run']) console.log(`in-process / crun = ${(inproc / med['crun run']).toFixed(2)}x (goal <= 1.5x)`);
if (med['runc run']) console.log(`berth-runtime CLI / runc = ${(cliMed / med['runc run']).toFixed(2)}x (goal <= 2x)`);
const floor = med['node start+exit alone (env -u NODE_EXTRA_CA_CERTS node -e 0)'];
if (med['runc run']) {
  console.log(`node start alone / runc = ${(floor / med['runc run']).toFixed(2)}x; node start + in-process path = ${(floor + inproc).toFixed(1)} ms = ${((floor + inproc) / med['runc run']).toFixed(2)}x runc`);
}
console.log(`berth-runtime CLI beyond node's start and the in-process path: ${(cliMed - floor - inproc).toFixed(1)} ms (loading the bundle, code run cold, exit)`);
rmSync(work, { recursive: true, force: true });
