/**
 * The classic (pre-BuildKit) builder on the engine's own primitives: each RUN is a container
 * run from the current image and committed (one layer); COPY/ADD put the context's files into
 * a created container and commit it; config-only steps (ENV, CMD, LABEL, ...) make an image
 * with the same layers and an `empty_layer` history entry, with no container. Messages are
 * dockerd's (`Step 1/4 : FROM busybox`, ` ---> 6d3e4188a38a`, `Successfully built ...`).
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { ImageRuntimeConfig, JsonMessage } from '@berth/api';
import { encodeHeader, readTar, type TarHeader } from '@berth/archive';
import { BerthError, isNotFound } from '@berth/errors';
import { familiarString, goModeIsDir, parseNormalizedReference, type ImageConfig } from '@berth/image';
import type { EngineContext } from '../context.js';
import type { Engine, RegistryAuth } from '../contract.js';
import { authForDomain } from '@berth/registry';
import { parseDockerfile, parseDuration, parseInstruction, type Instruction, type Stage } from './parse.js';
import { parseSignal } from '@berth/runtime';
import { envMap, expandWord } from './shell-word.js';
import { applyDockerignore, extractContext, hashSource, resolveSources, type Source } from './context.js';
import { BuildCache } from './cache.js';
import { goHealthcheck, goQuotedList } from './history.js';

export interface BuildOptions {
  /** Path of the Dockerfile inside the context (default `Dockerfile`). */
  dockerfile: string;
  tags: string[];
  /** `--build-arg`: a null value = take it from the daemon's environment (Docker), here: unset. */
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  quiet: boolean;
  noCache: boolean;
  rm: boolean;
  forceRm: boolean;
  pull: boolean;
  target: string;
  /** Network mode of the RUN containers (default: the default bridge). */
  networkMode: string;
  platform: string;
  /**
   * HostConfig fields for the RUN containers (`memory`, `cpushares`, `extrahosts`, `shmsize`,
   * `ulimits`, ... of the query, in HostConfig's names); unset = the defaults.
   */
  hostConfig?: Record<string, unknown>;
  /** The client went away: the build stops (a running step's container is killed), as dockerd cancels it. */
  signal?: AbortSignal;
  /** `X-Registry-Config`: credentials by registry, for the images FROM and COPY --from pull. */
  registryConfig?: Record<string, RegistryAuth>;
}

export const defaultBuildOptions = (): BuildOptions => ({
  dockerfile: '',
  tags: [],
  buildArgs: {},
  labels: {},
  quiet: false,
  noCache: false,
  rm: true,
  forceRm: false,
  pull: false,
  target: '',
  networkMode: '',
  platform: '',
});

/** Names of the build args Docker lets through without an ARG (proxies). */
const BUILTIN_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

function stepFailed(msg: string, details: Record<string, unknown> = {}): BerthError {
  return new BerthError('BERTH_BUILD_STEP_FAILED', msg, { details });
}

/** Checks what can be refused before the context is read (Docker answers these with a 400). */
export function checkBuildOptions(opts: BuildOptions): void {
  for (const t of opts.tags) {
    const ref = parseNormalizedReference(t);
    if (ref.digest !== undefined) throw new BerthError('BERTH_REFERENCE_INVALID', `invalid reference format: ${t}`, { details: { reference: t } });
  }
  if (opts.platform !== '' && !/^linux(\/|$)/.test(opts.platform))
    throw new BerthError('BERTH_INVALID_ARGUMENT', `"${opts.platform}": unsupported platform: Berth builds linux images only`, { details: { field: 'platform' } });
}

interface StageState {
  /** The current image; null = scratch with no step yet. */
  image: string | null;
  config: ImageRuntimeConfig;
  /** Declared ARGs in scope and their values. */
  args: Map<string, string>;
  shell: string[];
}

export class Builder {
  private readonly out: (m: JsonMessage) => void;
  private readonly containers = new Set<string>();
  private readonly stageImages = new Map<string, string>();
  private readonly usedArgs = new Set<string>();
  private step = 0;
  private total = 0;
  private contextDir = '';
  private escape = '\\';
  private readonly cache: BuildCache;

  constructor(
    private readonly engine: Engine,
    private readonly ctx: EngineContext,
    private readonly opts: BuildOptions,
    progress: (m: JsonMessage) => void,
  ) {
    // Quiet: nothing goes out (not even the aux result, as dockerd); berthd writes the id at the end.
    this.out = opts.quiet ? () => undefined : progress;
    this.cache = new BuildCache(ctx);
  }

  private checkCanceled(): void {
    if (this.opts.signal?.aborted) throw stepFailed('context canceled', { canceled: true });
  }

  private say(text: string): void {
    this.out({ stream: text });
  }

  /** Runs the build; answers the image id (`sha256:...`). The context directory is removed at the end. */
  async build(context: Readable): Promise<string> {
    checkBuildOptions(this.opts);
    this.contextDir = path.join(this.ctx.opts.dataRoot, 'builder', 'contexts', randomBytes(16).toString('hex'));
    try {
      await extractContext(context, this.contextDir);
      const dfName = await this.dockerfilePath();
      const text = await fs.readFile(path.join(this.contextDir, dfName), 'utf8');
      await applyDockerignore(this.contextDir, [dfName, '.dockerignore']);
      const df = parseDockerfile(text, dfName);
      this.escape = df.escape;
      // A BuildKit frontend cannot run here: the directive is ignored, and the user is told so.
      if (df.syntax !== null) this.say(`[Note] the parser directive "# syntax=${df.syntax}" is ignored: Berth's classic builder has no frontends\n`);
      let stages = df.stages;
      if (this.opts.target !== '') {
        const i = stages.findIndex((s) => s.name === this.opts.target.toLowerCase());
        if (i === -1) throw new BerthError('BERTH_INVALID_ARGUMENT', `failed to reach build target ${this.opts.target} in Dockerfile`, { details: { field: 'target' } });
        stages = stages.slice(0, i + 1);
      }
      const last = stages[stages.length - 1]!;
      const labels = Object.entries(this.opts.labels);
      if (labels.length > 0) {
        const text = `LABEL ${labels.map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ')}`;
        last.instructions.push(parseInstruction(text, 0, '\\'));
      }
      // dockerd counts (and prints) the ARGs before the first FROM as steps too.
      this.total = df.metaArgs.length + stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
      // The meta ARGs (before the first FROM): their values, for FROM lines and for `ARG NAME` in a stage.
      const meta = new Map<string, string>();
      for (const a of df.metaArgs) {
        this.say(`Step ${++this.step}/${this.total} : ${a.original}\n`);
        const name = a.args[0]!;
        const given = this.buildArg(name);
        meta.set(name, given ?? expandWord(a.args[1]!, meta, this.escape));
      }
      let image = '';
      for (const [i, stage] of stages.entries()) {
        image = await this.runStage(stage, i, meta);
      }
      const unused = Object.keys(this.opts.buildArgs).filter((k) => !this.usedArgs.has(k) && !BUILTIN_ARGS.has(k));
      if (unused.length > 0) this.say(`[Warning] One or more build-args [${unused.sort().join(' ')}] were not consumed\n`);
      this.out({ aux: { ID: image } });
      this.say(`Successfully built ${short(image)}\n`);
      for (const t of this.opts.tags) {
        const ref = parseNormalizedReference(t);
        ref.tag ??= 'latest';
        await this.engine.tagImage(image, familiarString({ ...ref, tag: undefined }), ref.tag);
        this.say(`Successfully tagged ${familiarString(ref)}\n`);
      }
      return image;
    } finally {
      await fs.rm(this.contextDir, { recursive: true, force: true }).catch(() => undefined);
      if (this.opts.forceRm) await this.removeContainers();
    }
  }

  private buildArg(name: string): string | undefined {
    const v = this.opts.buildArgs[name];
    if (v === undefined || v === null) return undefined;
    this.usedArgs.add(name);
    return v;
  }

  private async dockerfilePath(): Promise<string> {
    const want = this.opts.dockerfile === '' ? 'Dockerfile' : this.opts.dockerfile;
    const rel = path.posix.normalize(`/${want}`).slice(1);
    const candidates = this.opts.dockerfile === '' ? ['Dockerfile', 'dockerfile'] : [rel];
    for (const c of candidates) {
      const real = await fs.realpath(path.join(this.contextDir, c)).catch(() => null);
      if (real !== null && real.startsWith(`${this.contextDir}/`) && (await fs.stat(real)).isFile()) return path.relative(this.contextDir, real);
    }
    throw new BerthError('BERTH_INVALID_ARGUMENT', `Cannot locate specified Dockerfile: ${want}`, { details: { field: 'dockerfile' } });
  }

  private async removeContainers(): Promise<void> {
    for (const id of [...this.containers]) {
      await this.removeContainer(id).catch((err: unknown) => this.ctx.log.warn({ err, containerId: id }, 'build: removing an intermediate container failed'));
    }
  }

  private async removeContainer(id: string): Promise<void> {
    await this.engine.removeContainer(id, { force: true, volumes: true });
    this.containers.delete(id);
  }

  // ---- stages ----

  private async runStage(stage: Stage, index: number, meta: Map<string, string>): Promise<string> {
    this.say(`Step ${++this.step}/${this.total} : ${stage.from.original}\n`);
    const baseName = expandWord(stage.base, meta, this.escape);
    const st: StageState = { image: null, config: {}, args: new Map(), shell: ['/bin/sh', '-c'] };
    if (baseName.toLowerCase() === 'scratch') {
      addDefaultPath(st.config);
      this.say(' ---> \n');
    } else {
      st.image = await this.baseImage(baseName, stage);
      const resolved = await this.ctx.images.resolve(st.image);
      st.config = structuredClone(resolved.config.config ?? {});
      if (st.config.Shell?.length) st.shell = st.config.Shell;
      addDefaultPath(st.config);
      this.say(` ---> ${short(st.image)}\n`);
      const triggers = st.config.OnBuild ?? [];
      if (triggers.length > 0) {
        this.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
        st.config.OnBuild = [];
        for (const t of triggers) await this.dispatch(st, parseInstruction(t, 0, '\\'), meta, true);
      }
      st.config.OnBuild = null;
    }
    for (const ins of stage.instructions) {
      this.checkCanceled();
      this.say(`Step ${++this.step}/${this.total} : ${ins.original}\n`);
      await this.dispatch(st, ins, meta, false);
      this.say(` ---> ${short(st.image ?? '')}\n`);
    }
    if (st.image === null) st.image = await this.configImage(st, null, 'FROM scratch');
    this.stageImages.set(String(index), st.image);
    if (stage.name !== '') this.stageImages.set(stage.name, st.image);
    return st.image;
  }

  private async baseImage(name: string, stage: Stage): Promise<string> {
    const fromStage = this.stageImages.get(name.toLowerCase());
    if (fromStage !== undefined && name.toLowerCase() !== stage.name) return fromStage;
    if (!this.opts.pull) {
      try {
        return (await this.ctx.images.resolve(name)).id;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return this.pull(name);
  }

  /** Pulls `name` with the client's credentials for its registry (X-Registry-Config), as dockerd's builder does. */
  private pull(name: string): Promise<string> {
    let auth: RegistryAuth = {};
    try {
      auth = authForDomain(this.opts.registryConfig ?? {}, parseNormalizedReference(name).domain);
    } catch {
      // Not a reference: the pull says so in its own words.
    }
    return this.engine.pullImage(name, auth, (m) => this.out(m));
  }

  // ---- instructions ----

  /** The variables for substitution: ARGs in scope, then ENV over them (Docker's precedence). */
  private envOf(st: StageState): Map<string, string> {
    const m = new Map(st.args);
    for (const [k, v] of envMap(st.config.Env ?? [])) m.set(k, v);
    return m;
  }

  private expand(st: StageState, word: string): string {
    return expandWord(word, this.envOf(st), this.escape);
  }

  private async dispatch(st: StageState, ins: Instruction, meta: Map<string, string>, trigger: boolean): Promise<void> {
    const c = st.config;
    switch (ins.cmd) {
      case 'env': {
        const env = envMap(c.Env ?? []);
        const parts: string[] = [];
        for (let i = 0; i < ins.args.length; i += 2) {
          const k = this.expand(st, ins.args[i]!);
          const v = this.expand(st, ins.args[i + 1]!);
          env.delete(k);
          env.set(k, v);
          parts.push(`${k}=${v}`);
        }
        // Docker keeps the order: replaced keys stay where they were.
        const old = c.Env ?? [];
        const next: string[] = [];
        const seen = new Set<string>();
        for (const e of old) {
          const k = e.split('=')[0]!;
          if (env.has(k) && !seen.has(k)) {
            next.push(`${k}=${env.get(k)!}`);
            seen.add(k);
          }
        }
        for (const [k, v] of env) if (!seen.has(k)) next.push(`${k}=${v}`);
        c.Env = next;
        return this.commitConfig(st, `ENV ${parts.join(' ')}`);
      }
      case 'arg': {
        const name = ins.args[0]!;
        const given = this.buildArg(name);
        let value: string | undefined = given;
        if (value === undefined) {
          if (!ins.argNoDefault?.[0]) value = this.expand(st, ins.args[1]!);
          else if (meta.has(name)) value = meta.get(name)!;
        }
        if (value !== undefined) st.args.set(name, value);
        else st.args.delete(name);
        return this.commitConfig(st, `ARG ${ins.argNoDefault?.[0] ? name : `${name}=${ins.args[1]!}`}`);
      }
      case 'label': {
        const labels = { ...(c.Labels ?? {}) };
        const parts: string[] = [];
        for (let i = 0; i < ins.args.length; i += 2) {
          const k = this.expand(st, ins.args[i]!);
          const v = this.expand(st, ins.args[i + 1]!);
          labels[k] = v;
          parts.push(`${k}=${v}`);
        }
        c.Labels = labels;
        return this.commitConfig(st, `LABEL ${parts.join(' ')}`);
      }
      case 'maintainer':
        return this.commitConfig(st, `MAINTAINER ${ins.args[0]!}`);
      case 'cmd':
      case 'entrypoint': {
        const v = ins.json ? ins.args : ins.args.length ? [...st.shell, ins.args[0]!] : ins.cmd === 'entrypoint' ? [] : null;
        if (ins.cmd === 'cmd') c.Cmd = v;
        else {
          c.Entrypoint = v;
          // An ENTRYPOINT resets the CMD inherited from the base image (Docker).
          if (!this.cmdSetInStage.has(st)) c.Cmd = null;
        }
        if (ins.cmd === 'cmd') this.cmdSetInStage.add(st);
        return this.commitConfig(st, `${ins.cmd.toUpperCase()} ${goQuotedList(v ?? [])}`);
      }
      case 'shell':
        st.shell = ins.args;
        c.Shell = ins.args;
        return this.commitConfig(st, `SHELL [${ins.args.join(' ')}]`);
      case 'user':
        c.User = this.expand(st, ins.args[0]!);
        return this.commitConfig(st, `USER ${c.User}`);
      case 'stopsignal': {
        const sig = this.expand(st, ins.args[0]!);
        try {
          parseSignal(sig);
        } catch {
          throw stepFailed(`Invalid signal: ${sig}`);
        }
        c.StopSignal = sig;
        return this.commitConfig(st, `STOPSIGNAL ${sig}`);
      }
      case 'expose': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        const list: string[] = [];
        for (const w of ins.args) {
          const p = this.expand(st, w);
          list.push(p);
          const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!m) throw stepFailed(`Invalid containerPort: ${p.split('/')[0]}`);
          const lo = Number(m[1]);
          const hi = m[2] !== undefined ? Number(m[2]) : lo;
          for (let port = lo; port <= hi; port++) {
            const key = `${port}/${(m[3] ?? 'tcp').toLowerCase()}`;
            ports[key] = {};
          }
        }
        c.ExposedPorts = ports;
        return this.commitConfig(st, `EXPOSE ${list.join(' ')}`);
      }
      case 'volume': {
        const vols = { ...(c.Volumes ?? {}) };
        for (const w of ins.args) {
          const v = this.expand(st, w);
          if (v.trim() === '') throw stepFailed('VOLUME specified can not be an empty string');
          vols[v] = {};
        }
        c.Volumes = vols;
        return this.commitConfig(st, `VOLUME [${ins.args.map((w) => this.expand(st, w)).join(' ')}]`);
      }
      case 'healthcheck': {
        if (ins.args[0] === 'NONE') c.Healthcheck = { Test: ['NONE'] };
        else {
          const test = ins.json ? ['CMD', ...ins.args.slice(1)] : ['CMD-SHELL', ins.args[1]!];
          const dur = (f: string): number | undefined => {
            const v = ins.flags.get(f);
            return v === undefined ? undefined : (parseDuration(v) ?? undefined);
          };
          const hc: NonNullable<ImageRuntimeConfig['Healthcheck']> = { Test: test };
          const iv = dur('interval');
          const to = dur('timeout');
          const sp = dur('start-period');
          if (iv !== undefined) hc.Interval = iv;
          if (to !== undefined) hc.Timeout = to;
          if (sp !== undefined) hc.StartPeriod = sp;
          const r = ins.flags.get('retries');
          if (r !== undefined) {
            const n = Number(r);
            if (!Number.isInteger(n) || n < 1) throw stepFailed('--retries must be at least 1');
            hc.Retries = n;
          }
          c.Healthcheck = hc;
        }
        return this.commitConfig(st, `HEALTHCHECK ${goHealthcheck(c.Healthcheck!)}`);
      }
      case 'onbuild':
        c.OnBuild = [...(c.OnBuild ?? []), ins.args[0]!];
        return this.commitConfig(st, `ONBUILD ${ins.args[0]!}`);
      case 'workdir':
        return this.workdir(st, ins);
      case 'run':
        return this.run(st, ins);
      case 'copy':
      case 'add':
        return this.copy(st, ins);
      case 'from':
        throw stepFailed(`${trigger ? 'ONBUILD ' : ''}FROM is not allowed here`);
    }
    throw stepFailed(`unknown instruction: ${ins.cmd.toUpperCase()}`);
  }

  private readonly cmdSetInStage = new WeakSet<StageState>();

  // ---- images without a container ----

  private async emptyImage(): Promise<string> {
    const cfg: ImageConfig = { architecture: goArch(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } };
    return this.ctx.images.addImage({ config: Buffer.from(JSON.stringify(cfg)), layers: [], tags: [] });
  }

  /** A child of `base` with the stage's config and one more history entry; same layers. */
  private async childConfig(base: string | null, config: ImageRuntimeConfig, containerConfig: ImageRuntimeConfig, createdBy: string): Promise<string> {
    const parent = base === null ? null : await this.ctx.images.resolve(base);
    const created = new Date().toISOString();
    const diffIds = parent?.config.rootfs.diff_ids ?? [];
    const cfg: ImageConfig & { container_config: ImageRuntimeConfig } = {
      architecture: parent?.config.architecture ?? goArch(),
      config,
      container_config: containerConfig,
      created,
      history: [...(parent?.config.history ?? []), { created, created_by: createdBy, empty_layer: true }],
      os: parent?.config.os ?? 'linux',
      ...(parent !== null ? { parent: parent.id } : {}),
      rootfs: { type: 'layers', diff_ids: diffIds },
    };
    if (parent?.config.variant !== undefined) cfg.variant = parent.config.variant;
    const layers = diffIds.map((d) => ({
      diffId: d,
      open: async (): Promise<Readable> => {
        throw new BerthError('BERTH_LAYER_NOT_FOUND', `layer ${d} of the build's base image is gone`, { details: { layerId: d } });
      },
    }));
    return this.ctx.images.addImage({ config: Buffer.from(JSON.stringify(cfg)), layers, tags: [] });
  }

  /** A config-only step: the cache, else a new image with an empty layer. */
  private async commitConfig(st: StageState, what: string): Promise<void> {
    const cmd = [...nopShell(st), '#(nop) ', what];
    const containerConfig = { ...st.config, Cmd: cmd };
    if (await this.fromCache(st, containerConfig)) return;
    st.image = await this.childConfig(st.image, st.config, containerConfig, cmd.join(' '));
  }

  private async configImage(st: StageState, _base: null, what: string): Promise<string> {
    const cmd = [...nopShell(st), '#(nop) ', what];
    return this.childConfig(null, st.config, { ...st.config, Cmd: cmd }, cmd.join(' '));
  }

  private async fromCache(st: StageState, containerConfig: ImageRuntimeConfig): Promise<boolean> {
    if (this.opts.noCache || st.image === null) return false;
    const hit = await this.cache.lookup(st.image, containerConfig);
    if (hit === null) return false;
    this.say(' ---> Using cache\n');
    st.image = hit;
    return true;
  }

  // ---- containers ----

  /** A container of the current image (made first for scratch) with the step's config. */
  private async container(st: StageState, cmd: string[], env: string[]): Promise<string> {
    st.image ??= await this.emptyImage();
    const c = st.config;
    const body = {
      Image: st.image,
      Cmd: cmd,
      Entrypoint: [''],
      Env: env,
      User: c.User ?? '',
      WorkingDir: c.WorkingDir ?? '',
      Labels: c.Labels ?? {},
      // No health checks while a step runs.
      Healthcheck: { Test: ['NONE'] },
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: { ...(this.opts.hostConfig ?? {}), NetworkMode: this.opts.networkMode === '' ? 'default' : this.opts.networkMode },
    };
    const { Id } = await this.engine.createContainer(undefined, body as never);
    this.containers.add(Id);
    return Id;
  }

  /** Commits the container as the step's image, then removes it (rm). */
  private async commit(st: StageState, id: string, containerConfig: ImageRuntimeConfig, createdBy: string, announce = true): Promise<void> {
    const image = await this.ctx.images.commit(id, {
      imageId: st.image!,
      config: st.config,
      containerConfig,
      author: '',
      comment: '',
      createdBy,
      repo: '',
      tag: '',
    });
    if (this.opts.rm || this.opts.forceRm) {
      // Docker names the container only for the steps that said `Running in` (not COPY/ADD).
      if (announce) this.say(`Removing intermediate container ${short(id)}\n`);
      await this.removeContainer(id);
    }
    st.image = image;
  }

  private async afterFailure(id: string): Promise<void> {
    // A canceled build leaves no container of its own either (nobody is there to look at it).
    if (this.opts.forceRm || this.opts.signal?.aborted) {
      this.say(`Removing intermediate container ${short(id)}\n`);
      await this.removeContainer(id).catch(() => undefined);
    }
  }

  private async run(st: StageState, ins: Instruction): Promise<void> {
    const cmd = ins.json ? ins.args : [...st.shell, ins.args[0]!];
    // The ARGs in scope reach the command as environment, and the history says so (`|1 A=b ...`).
    const env = envMap(st.config.Env ?? []);
    const argEnv = [...st.args].filter(([k]) => !env.has(k)).map(([k, v]) => `${k}=${v}`);
    const prefix = argEnv.length > 0 ? [`|${argEnv.length}`, ...argEnv] : [];
    const containerConfig = { ...st.config, Cmd: [...prefix, ...cmd] };
    if (await this.fromCache(st, containerConfig)) return;
    const id = await this.container(st, cmd, [...(st.config.Env ?? []), ...argEnv]);
    this.say(` ---> Running in ${short(id)}\n`);
    let code: number;
    const kill = (): void => void this.engine.killContainer(id).catch(() => undefined);
    try {
      this.checkCanceled();
      const wait = await this.engine.waitContainer(id, 'next-exit');
      await this.engine.startContainer(id);
      this.opts.signal?.addEventListener('abort', kill, { once: true });
      const logs = await this.engine.containerLogs(id, { follow: true, stdout: true, stderr: true, since: 0, until: 0, timestamps: false, tail: 'all' });
      await this.relay(logs.body, logs.tty);
      code = (await wait.result).StatusCode;
      this.checkCanceled();
    } catch (err) {
      await this.afterFailure(id);
      throw err;
    } finally {
      this.opts.signal?.removeEventListener('abort', kill);
    }
    if (code !== 0) {
      await this.afterFailure(id);
      throw stepFailed(`The command '${cmd.join(' ')}' returned a non-zero code: ${code}`, { exitCode: code });
    }
    await this.commit(st, id, containerConfig, [...prefix, ...cmd].join(' '));
  }

  /** The container's output as `stream` messages (the multiplexed framing removed). */
  private async relay(body: Readable, tty: boolean): Promise<void> {
    let pending: Buffer = Buffer.alloc(0);
    // A character split across frames is written whole.
    const text = new StringDecoder('utf8');
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (tty) {
        this.say(text.write(chunk));
        continue;
      }
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 8) {
        const n = pending.readUInt32BE(4);
        if (pending.length < 8 + n) break;
        const t = text.write(pending.subarray(8, 8 + n));
        if (t !== '') this.say(t);
        pending = pending.subarray(8 + n);
      }
    }
  }

  private async exists(id: string, p: string): Promise<{ dir: boolean } | null> {
    try {
      const s = await this.engine.statContainerPath(id, p);
      return { dir: goModeIsDir(s.mode) };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Makes the directory `dir` (and missing parents) in the container, owned by uid:gid. */
  private async mkdirs(id: string, dir: string, uid: number, gid: number): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    let at = 0;
    for (; at < parts.length; at++) {
      const e = await this.exists(id, `/${parts.slice(0, at + 1).join('/')}`);
      if (e === null) break;
      if (!e.dir) throw stepFailed(`mkdir /${parts.slice(0, at + 1).join('/')}: not a directory`);
    }
    if (at === parts.length) return;
    const base = `/${parts.slice(0, at).join('/')}`;
    const entries: Buffer[] = [];
    for (let i = at; i < parts.length; i++) entries.push(encodeHeader(header(`${parts.slice(at, i + 1).join('/')}/`, 'dir', 0o755, uid, gid, 0)));
    await this.engine.putContainerArchive(id, base, Readable.from([...entries, Buffer.alloc(1024)]), { noOverwriteDirNonDir: false });
  }

  private async workdir(st: StageState, ins: Instruction): Promise<void> {
    const w = this.expand(st, ins.args[0]!);
    const dir = path.posix.resolve(st.config.WorkingDir || '/', w);
    st.config.WorkingDir = dir;
    const what = `#(nop) WORKDIR ${dir}`;
    const containerConfig = { ...st.config, Cmd: [...nopShell(st), what] };
    if (await this.fromCache(st, containerConfig)) return;
    // The directory is made now, as Docker does, so it lands in this step's layer.
    const id = await this.container(st, [...nopShell(st), what], st.config.Env ?? []);
    try {
      if ((await this.exists(id, dir)) === null) {
        this.say(` ---> Running in ${short(id)}\n`);
        await this.mkdirs(id, dir, 0, 0);
        await this.commit(st, id, containerConfig, [...nopShell(st), what].join(' '));
        return;
      }
    } catch (err) {
      await this.afterFailure(id);
      throw err;
    }
    await this.removeContainer(id);
    st.image = await this.childConfig(st.image, st.config, containerConfig, [...nopShell(st), what].join(' '));
  }

  private async chownOf(id: string, spec: string | undefined): Promise<{ uid: number; gid: number }> {
    if (spec === undefined || spec === '') return { uid: 0, gid: 0 };
    const [u, g] = spec.split(':') as [string, string | undefined];
    const lookup = async (file: string, name: string, what: string): Promise<number> => {
      if (/^\d+$/.test(name)) return Number(name);
      const text = await this.readFile(id, file);
      for (const line of text.split('\n')) {
        const f = line.split(':');
        if (f[0] === name && f[2] !== undefined) return Number(f[2]);
      }
      const kind = what === 'uid' ? 'user' : 'group';
      throw stepFailed(`unable to convert uid/gid chown string to host mapping: can't find ${what} for ${kind} ${name}: no such ${kind}: ${name}`);
    };
    const uid = await lookup('/etc/passwd', u, 'uid');
    const gid = g === undefined ? uid : await lookup('/etc/group', g, 'gid');
    return { uid, gid };
  }

  private async readFile(id: string, p: string): Promise<string> {
    try {
      const { tar } = await this.engine.getContainerArchive(id, p);
      for await (const { header: h, body } of readTar(tar)) {
        const parts: Buffer[] = [];
        for await (const b of body) parts.push(b as Buffer);
        if (h.type === 'file') {
          tar.destroy();
          return Buffer.concat(parts).toString('utf8');
        }
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return '';
  }

  private async copy(st: StageState, ins: Instruction): Promise<void> {
    const upper = ins.cmd.toUpperCase();
    const words = ins.args.map((w) => this.expand(st, w));
    const destRaw = words[words.length - 1]!;
    const srcs = words.slice(0, -1);
    const fromFlag = ins.flags.get('from');
    for (const s of srcs) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
        if (ins.cmd === 'copy') throw stepFailed('COPY failed: source can\'t be a URL for COPY');
        throw stepFailed(`ADD failed: downloading ${s}: adding a remote URL is not supported by Berth's builder; download it in the context or with RUN`);
      }
    }
    const chownSpec = ins.flags.has('chown') ? this.expand(st, ins.flags.get('chown')!) : undefined;
    const chmodSpec = ins.flags.get('chmod');
    if (chmodSpec !== undefined && !/^[0-7]{3,4}$/.test(chmodSpec)) throw stepFailed(`invalid chmod parameter: ${chmodSpec}; only octal modes are supported`);
    const chmod = chmodSpec === undefined ? null : parseInt(chmodSpec, 8);
    const destIsDir = destRaw.endsWith('/') || destRaw === '.' || destRaw.endsWith('/.');
    // The history names the destination as written (dockerd: `COPY file:<sum> in ./ `).
    const dest = destRaw;
    const destPath = path.posix.resolve(st.config.WorkingDir || '/', destRaw);

    if (fromFlag !== undefined) return this.copyFrom(st, ins, fromFlag, srcs, destPath, destIsDir, chownSpec, chmod);

    const sources: Source[] = [];
    for (const s of srcs) sources.push(...(await resolveSources(this.contextDir, s, upper)));
    if ((sources.length > 1 || srcs.length > 1) && !destIsDir)
      throw stepFailed(`When using ${upper} with more than one source file, the destination must be a directory and end with a /`);
    const hashes = await Promise.all(sources.map((s) => hashSource(s)));
    const kind = sources.length > 1 ? 'multi' : sources[0]!.isDir ? 'dir' : 'file';
    const digest = sources.length > 1 ? createHashHex(hashes.join(',')) : hashes[0]!;
    // dockerd writes the --chown flag right before the source kind, without a space.
    const what = `#(nop) ${upper} ${chownSpec !== undefined ? `--chown=${chownSpec}` : ''}${kind}:${digest} in ${dest} `;
    const cmd = [...nopShell(st), what];
    // --chown and --chmod are part of the cache key (Docker's history line does not show them).
    const containerConfig = { ...st.config, Cmd: ownershipKey(cmd, chownSpec, chmodSpec) };
    if (await this.fromCache(st, containerConfig)) return;
    const id = await this.container(st, cmd, st.config.Env ?? []);
    try {
      const { uid, gid } = await this.chownOf(id, chownSpec);
      const existing = await this.exists(id, destPath);
      const intoDir = destIsDir || sources.some((s) => s.isDir) || existing?.dir === true;
      const dir = intoDir ? destPath : path.posix.dirname(destPath);
      await this.mkdirs(id, dir, uid, gid);
      for (const s of sources) {
        if (ins.cmd === 'add' && !s.isDir && (await isArchive(s.abs))) {
          // A local archive is unpacked into the destination, which is a directory then.
          await this.mkdirs(id, destPath, uid, gid);
          await this.engine.putContainerArchive(id, destPath, Readable.from(decompressedFile(s.abs)), { noOverwriteDirNonDir: false });
          continue;
        }
        const top = s.isDir ? '' : intoDir ? path.posix.basename(s.rel || s.abs) : path.posix.basename(destPath);
        await this.engine.putContainerArchive(id, dir, Readable.from(packSource(s.abs, top, uid, gid, chmod)), { noOverwriteDirNonDir: false });
      }
      await this.commit(st, id, containerConfig, cmd.join(' '), false);
    } catch (err) {
      await this.afterFailure(id);
      throw err;
    }
  }

  /** COPY --from=<stage|index|image>: the paths read out of a container of that image. */
  private async copyFrom(st: StageState, ins: Instruction, from: string, srcs: string[], destPath: string, destIsDir: boolean, chownSpec: string | undefined, chmod: number | null): Promise<void> {
    if (ins.cmd !== 'copy') throw stepFailed('ADD does not support the --from flag');
    const fromName = this.expand(st, from).toLowerCase();
    let fromImage = this.stageImages.get(fromName);
    if (fromImage === undefined) {
      try {
        fromImage = (await this.ctx.images.resolve(fromName)).id;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        try {
          fromImage = await this.pull(fromName);
        } catch (e) {
          throw stepFailed(`invalid from flag value ${fromName}: ${(e as Error).message}`);
        }
      }
    }
    if (srcs.length > 1 && !destIsDir) throw stepFailed('When using COPY with more than one source file, the destination must be a directory and end with a /');
    const what = `#(nop) COPY from:${fromImage} ${srcs.join(' ')} in ${destPath}${destIsDir ? '/' : ''} `;
    const cmd = [...nopShell(st), what];
    const containerConfig = { ...st.config, Cmd: ownershipKey(cmd, chownSpec, chmod === null ? undefined : chmod.toString(8)) };
    if (await this.fromCache(st, containerConfig)) return;
    const src = (await this.engine.createContainer(undefined, { Image: fromImage, Cmd: ['/bin/true'], Entrypoint: [''], Healthcheck: { Test: ['NONE'] } } as never)).Id;
    this.containers.add(src);
    const id = await this.container(st, cmd, st.config.Env ?? []);
    try {
      const { uid, gid } = await this.chownOf(id, chownSpec);
      const existing = await this.exists(id, destPath);
      for (const s of srcs) {
        const p = path.posix.resolve('/', s);
        const stat = await this.exists(src, p);
        if (stat === null) throw stepFailed(`COPY failed: stat ${p}: file does not exist`);
        const intoDir = destIsDir || stat.dir || existing?.dir === true;
        const dir = intoDir ? destPath : path.posix.dirname(destPath);
        await this.mkdirs(id, dir, uid, gid);
        const { tar } = await this.engine.getContainerArchive(src, p);
        const top = stat.dir ? '' : intoDir ? path.posix.basename(p) : path.posix.basename(destPath);
        await this.engine.putContainerArchive(id, dir, Readable.from(rebaseTar(tar, top, uid, gid, chownSpec !== undefined, chmod)), { noOverwriteDirNonDir: false });
      }
      await this.removeContainer(src);
      await this.commit(st, id, containerConfig, cmd.join(' '), false);
    } catch (err) {
      await this.removeContainer(src).catch(() => undefined);
      await this.afterFailure(id);
      throw err;
    }
  }
}

/** dockerd adds the default PATH to a stage whose base image sets none (scratch included). */
function addDefaultPath(c: ImageRuntimeConfig): void {
  if (!(c.Env ?? []).some((e) => e.startsWith('PATH='))) c.Env = [...(c.Env ?? []), `PATH=${DEFAULT_PATH}`];
}

/** The step's command with the ownership flags appended: the cache key of a COPY/ADD. */
function ownershipKey(cmd: string[], chown: string | undefined, chmod: string | undefined): string[] {
  return [...cmd, ...(chown !== undefined ? [`--chown=${chown}`] : []), ...(chmod !== undefined ? [`--chmod=${chmod}`] : [])];
}

function nopShell(st: StageState): string[] {
  return st.shell;
}

function goArch(): string {
  const m: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return m[process.arch] ?? process.arch;
}

function createHashHex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}


function header(name: string, type: TarHeader['type'], mode: number, uid: number, gid: number, size: number, extra: Partial<TarHeader> = {}): TarHeader {
  return { name, type, mode, uid, gid, size, mtime: Math.floor(Date.now() / 1000), linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), ...extra };
}

function pad(size: number): Buffer {
  const r = size % 512;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - r);
}

/** A tar of a context path: a file as `top`, a directory's contents under `top` ('' = at the top). */
async function* packSource(abs: string, top: string, uid: number, gid: number, chmod: number | null): AsyncGenerator<Buffer> {
  const modeOf = (st: { mode: number }): number => chmod ?? st.mode & 0o7777;
  const one = async function* (p: string, name: string): AsyncGenerator<Buffer> {
    const st = await fs.lstat(p);
    const mtime = Math.floor(st.mtimeMs / 1000);
    if (st.isDirectory()) {
      if (name !== '') yield encodeHeader(header(`${name}/`, 'dir', modeOf(st), uid, gid, 0, { mtime }));
      for (const c of (await fs.readdir(p)).sort()) yield* one(path.join(p, c), name === '' ? c : `${name}/${c}`);
    } else if (st.isSymbolicLink()) {
      yield encodeHeader(header(name, 'symlink', st.mode & 0o7777, uid, gid, 0, { mtime, linkname: await fs.readlink(p) }));
    } else if (st.isFile()) {
      const data = await fs.readFile(p);
      yield encodeHeader(header(name, 'file', modeOf(st), uid, gid, data.length, { mtime }));
      yield data;
      yield pad(data.length);
    }
  };
  // A top-level source that is a symlink was resolved already (its target is copied).
  const st = await fs.stat(abs);
  if (st.isDirectory()) yield* one(abs, top);
  else {
    const data = await fs.readFile(abs);
    yield encodeHeader(header(top, 'file', modeOf(st), uid, gid, data.length, { mtime: Math.floor(st.mtimeMs / 1000) }));
    yield data;
    yield pad(data.length);
  }
  yield Buffer.alloc(1024);
}

/** A container archive (top member = the path's basename) renamed to `top` ('' = contents), owners set when chown. */
async function* rebaseTar(tar: Readable, top: string, uid: number, gid: number, chown: boolean, chmod: number | null): AsyncGenerator<Buffer> {
  for await (const { header: h, body } of readTar(tar)) {
    const parts = h.name.split('/').filter((p) => p !== '' && p !== '.');
    const rest = parts.slice(1);
    const name = top === '' ? rest.join('/') : [top, ...rest].join('/');
    const chunks: Buffer[] = [];
    for await (const b of body) chunks.push(b as Buffer);
    if (name === '') continue;
    const out: TarHeader = { ...h, name: h.type === 'dir' ? `${name}/` : name, ...(chown ? { uid, gid } : {}), ...(chmod !== null && h.type !== 'symlink' ? { mode: chmod } : {}) };
    yield encodeHeader(out);
    if (h.type === 'file') {
      yield* chunks;
      yield pad(h.size);
    }
  }
  yield Buffer.alloc(1024);
}

/** ADD auto-extracts a local tar (plain or gzip), as Docker. */
async function isArchive(abs: string): Promise<boolean> {
  const fh = await fs.open(abs, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return true;
    return bytesRead >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

async function* decompressedFile(abs: string): AsyncGenerator<Buffer> {
  const { createReadStream } = await import('node:fs');
  const fh = await fs.open(abs, 'r');
  const b = Buffer.alloc(2);
  await fh.read(b, 0, 2, 0);
  await fh.close();
  const src = createReadStream(abs);
  yield* (b[0] === 0x1f && b[1] === 0x8b ? src.pipe(createGunzip()) : src) as AsyncIterable<Buffer>;
}
