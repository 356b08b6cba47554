import { rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoLeaksEventually,
  createRuntime,
  describeRun,
  forceDelete,
  makeBundle,
  requireAvailable,
  runRuntime,
  selectedRuntimes,
  snapshotLeaks,
  uniqueSuffix,
  type Bundle,
  type OciSpec,
  type RunResult,
  type Runtime,
  type RuntimeName,
  type LeakScope,
} from '@berth/test-support';

/** Put in every case's process env, so the leak checker can find the container's processes. */
export const MARKER_ENV = 'BERTH_CONFORMANCE_RUN';
const RUN_TOKEN = uniqueSuffix();
export const MARKER = `${MARKER_ENV}=${RUN_TOKEN}`;

export const isRoot = process.getuid?.() === 0;

let runtimes: Promise<Runtime[]> | undefined;

/**
 * The runtimes BERTH_CONFORMANCE_RUNTIMES selects (default berth,runc,crun), each with a
 * private state root. A missing one is returned unavailable: its cases fail, they never skip.
 */
export function runtimesUnderTest(): Promise<Runtime[]> {
  runtimes ??= (async () => {
    const rts = await Promise.all(selectedRuntimes().map((n) => createRuntime(n)));
    process.once('exit', () => {
      // State roots are empty when every case cleaned up; remove them synchronously at exit.
      for (const rt of rts) rmSync(rt.stateRoot, { recursive: true, force: true });
    });
    return rts;
  })();
  return runtimes;
}

/** The runtime every other is compared with: runc when selected, else the first selected. */
export function referenceOf(rts: Runtime[]): Runtime | undefined {
  return rts.find((r) => r.name === 'runc') ?? rts[0];
}

/** Prints which runtimes run, from where, and how (the crun wrapper on hybrid hosts). */
export function describeRuntimes(): void {
  test('runtimes under test', async (t) => {
    const rts = await runtimesUnderTest();
    t.diagnostic(`BERTH_CONFORMANCE_RUNTIMES=${process.env.BERTH_CONFORMANCE_RUNTIMES ?? '(unset: berth,runc,crun)'}; reference: ${referenceOf(rts)?.name ?? 'none'}`);
    for (const rt of rts) {
      t.diagnostic(`${rt.name}: ${rt.available ? rt.command.join(' ') : `UNAVAILABLE: ${rt.reason}`}; state root ${rt.stateRoot}`);
      for (const n of rt.notes) t.diagnostic(`${rt.name}: ${n}`);
    }
  });
}

export interface CaseContext {
  rt: Runtime;
  id: string;
  bundle: Bundle;
}

export interface CaseDef<O> {
  /** Edits the base spec (runc's default, probe as process, a cgroupsPath and the marker set). */
  spec?: (spec: OciSpec) => void;
  /** Edits the bundle (rootfs) before the run. */
  prepare?: (ctx: CaseContext) => Promise<void>;
  /** Runs the container; default `run --bundle DIR ID` in the foreground. */
  run?: (ctx: CaseContext) => Promise<RunResult>;
  /** Extracts the observation from the run. */
  observe: (r: RunResult, ctx: CaseContext) => O | Promise<O>;
  /** Absolute expectations, checked for every runtime. */
  expect?: (o: O, ctx: CaseContext, r: RunResult) => void;
  /** Projection compared across runtimes (default: the observation itself). */
  compare?: (o: O, ctx: CaseContext) => unknown;
  /** Per-run timeout (default 20 s). */
  timeoutMs?: number;
  /** A reason this host cannot run the case (named skip), or false. */
  skip?: string | false;
}

function containerId(caseName: string, rt: RuntimeName): string {
  const slug = caseName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24);
  return `bconf-${rt}-${slug}-${uniqueSuffix()}`;
}

/** The leak scope of one container run. */
export function leakScope(rt: Runtime, id: string, bundleDir: string): LeakScope {
  // Mounts a runtime can leave in the host namespace lie under the bundle (the rootfs and what
  // a spec mounts into it) or the state root; the rest of the host's mount table belongs to
  // whatever else runs on the machine (another daemon's overlays) and is not compared.
  const parent = path.dirname(bundleDir);
  return {
    cgroupPrefix: id,
    processMarkers: [rt.stateRoot, id],
    stateDirs: [rt.stateRoot],
    mountFilter: (mp) => mp.startsWith(`${parent}/`) || mp.startsWith(`${rt.stateRoot}/`) || mp === parent || mp === rt.stateRoot,
  };
}

/** Default run: `run --bundle DIR ID`, foreground, stdio through pipes. */
export function runForeground(ctx: CaseContext, timeoutMs?: number): Promise<RunResult> {
  return runRuntime(ctx.rt, ['run', '--bundle', ctx.bundle.dir, ctx.id], timeoutMs === undefined ? {} : { timeoutMs });
}

/**
 * One conformance case: the same spec runs under every selected runtime; each run gets its
 * absolute expectations and a leak check, then every runtime's observation is compared with
 * the reference runtime's.
 */
export function conformanceCase<O>(name: string, def: CaseDef<O>): void {
  test(name, { skip: (!isRoot && 'needs root') || def.skip || false }, async (t: TestContext) => {
    const rts = await runtimesUnderTest();
    const ref = referenceOf(rts);
    const seen = new Map<RuntimeName, { compared: unknown; ctx: CaseContext }>();
    for (const rt of rts) {
      await t.test(rt.name, async (st) => {
        requireAvailable(rt);
        const id = containerId(name, rt.name);
        const bundle = await makeBundle({
          spec: (s) => {
            s.linux!.cgroupsPath = `/${id}`;
            s.process.env = [...(s.process.env ?? []), MARKER];
            def.spec?.(s);
          },
        });
        st.after(() => bundle.remove());
        const ctx: CaseContext = { rt, id, bundle };
        await def.prepare?.(ctx);
        const before = await snapshotLeaks(leakScope(rt, id, bundle.dir));
        let r: RunResult;
        try {
          r = await (def.run ? def.run(ctx) : runForeground(ctx, def.timeoutMs));
        } finally {
          await forceDelete(rt, id);
        }
        const o = await def.observe(r, ctx);
        def.expect?.(o, ctx, r);
        await assertNoLeaksEventually(before, `${rt.name} ${id}`);
        seen.set(rt.name, { compared: def.compare ? def.compare(o, ctx) : o, ctx });
      });
    }
    if (ref === undefined) return;
    for (const rt of rts) {
      if (rt === ref) continue;
      await t.test(`${rt.name} matches ${ref.name}`, (st) => {
        const mine = seen.get(rt.name);
        const theirs = seen.get(ref.name);
        // The run that produced no observation already failed loudly above.
        if (!mine || !theirs) return st.skip(`no observation from ${!mine ? rt.name : ref.name} (its run failed above)`);
        assert.deepEqual(mine.compared, theirs.compared);
      });
    }
  });
}

/** Asserts a run exited with `code`, quoting the run when not. */
export function assertExit(r: RunResult, code: number): void {
  assert.equal(r.code, code, describeRun(r));
}

/**
 * The runtimes the bad-input cases run under: berth-runtime's contract, so "berth" by default.
 * Setting BERTH_CONFORMANCE_BAD_INPUT_RUNTIMES=runc,crun points the same cases at the reference
 * runtimes, to prove the harness (they accept some of these inputs: see the report).
 */
export const BAD_INPUT_RUNTIMES_ENV = 'BERTH_CONFORMANCE_BAD_INPUT_RUNTIMES';

export interface BadInputContext extends CaseContext {
  /** A host directory beside the bundle that escaping paths point at. */
  escapeDir: string;
}

export interface BadInputDef {
  spec?: (spec: OciSpec, ctx: { id: string }) => void;
  prepare?: (ctx: BadInputContext) => Promise<void>;
  /** The failing invocation; default `create --bundle DIR ID`. */
  run?: (ctx: BadInputContext) => Promise<RunResult>;
  /** Every one must match the runtime's error output (stderr + stdout): the field at fault. */
  mentions: (ctx: BadInputContext) => RegExp[];
  /** Runs after the failed run and before the leak check (e.g. remove a container the case made on purpose). */
  cleanup?: (ctx: BadInputContext) => Promise<void>;
}

/**
 * A bad input: the runtime must exit non-zero, name the field in its error, and leave no
 * mount, process, cgroup, state entry or netns file behind: checked before any forced delete.
 */
export function badInputCase(name: string, def: BadInputDef): void {
  test(`bad input: ${name}`, { skip: !isRoot && 'needs root' }, async (t) => {
    const selected = await runtimesUnderTest();
    const wanted = (process.env[BAD_INPUT_RUNTIMES_ENV]?.trim() || 'berth').split(',').map((s) => s.trim());
    const rts = selected.filter((r) => wanted.includes(r.name));
    if (rts.length === 0) {
      t.skip(`none of ${BAD_INPUT_RUNTIMES_ENV}=${wanted.join(',')} is in BERTH_CONFORMANCE_RUNTIMES`);
      return;
    }
    for (const rt of rts) {
      await t.test(rt.name, async (st) => {
        requireAvailable(rt);
        const id = containerId(name, rt.name);
        const bundle = await makeBundle({
          spec: (s) => {
            s.linux!.cgroupsPath = `/${id}`;
            s.process.env = [...(s.process.env ?? []), MARKER];
            def.spec?.(s, { id });
          },
        });
        st.after(() => bundle.remove());
        const escapeDir = path.join(path.dirname(bundle.dir), 'escape-target');
        await mkdir(escapeDir);
        const ctx: BadInputContext = { rt, id, bundle, escapeDir };
        await def.prepare?.(ctx);
        const scope = leakScope(rt, id, bundle.dir);
        scope.stateDirs = [...(scope.stateDirs ?? []), escapeDir];
        const before = await snapshotLeaks(scope);
        try {
          const r = await (def.run ? def.run(ctx) : runRuntime(rt, ['create', '--bundle', bundle.dir, id], { until: 'exit' }));
          // Every problem of the run is reported at once: exit status, error text, leftovers.
          const problems: string[] = [];
          if (r.code === 0) problems.push('expected a non-zero exit status');
          const out = `${r.stderr}\n${r.stdout}`;
          for (const re of def.mentions(ctx)) if (!re.test(out)) problems.push(`the error does not name the field (${re})`);
          await def.cleanup?.(ctx);
          try {
            await assertNoLeaksEventually(before, `${rt.name} ${id} after the failed run`);
          } catch (err) {
            problems.push((err as Error).message.split('\n\n')[0]!);
          }
          assert.deepEqual(problems, [], `${problems.join('; ')}\n${describeRun(r)}`);
        } finally {
          await forceDelete(rt, id);
        }
      });
    }
  });
}
