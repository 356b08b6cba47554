/**
 * GraphDriver on the wire (§8): the interface takes positional arguments, the wire takes
 * `graphDriverRequest` objects; Diff answers a raw tar and ApplyDiff sends one as the body
 * (`?id=<ID>&parent=<Parent>`).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { BerthError } from '@berth/errors';
import {
  ChangeKind,
  type Change,
  type CreateOpts,
  type GraphDriver,
  type GraphDriverCapabilities,
  type GraphDriverWireInit,
  type GraphDriverWireRequest,
  type GraphDriverWireResponse,
} from '@berth/plugin-api';
import { PluginTransport } from './transport.js';
import { encodeBody, remoteError } from './wire.js';

/** What a server handler of one graph method answers: a JSON object or a stream (Diff). */
export type GraphAnswer = { json: GraphDriverWireResponse } | { stream: Readable };

const req = (id: string, parent?: string, opts?: CreateOpts): GraphDriverWireRequest => {
  const r: GraphDriverWireRequest = { ID: id };
  if (parent) r.Parent = parent;
  if (opts?.mountLabel) r.MountLabel = opts.mountLabel;
  if (opts?.storageOpt && Object.keys(opts.storageOpt).length > 0) r.StorageOpt = opts.storageOpt;
  return r;
};

const createOptsOf = (r: GraphDriverWireRequest): CreateOpts | undefined => {
  const o: CreateOpts = {};
  if (r.MountLabel) o.mountLabel = r.MountLabel;
  if (r.StorageOpt) o.storageOpt = r.StorageOpt;
  return Object.keys(o).length === 0 ? undefined : o;
};

/** Server side: wire method name -> a call of the driver. `body` is the parsed JSON (or {}), `query` the URL's. */
export function graphServerMethods(
  d: GraphDriver,
): Record<string, (body: GraphDriverWireRequest, query: URLSearchParams, raw: Readable) => Promise<GraphAnswer>> {
  const ok = (json: GraphDriverWireResponse = {}): GraphAnswer => ({ json });
  const id = (b: GraphDriverWireRequest): string => b.ID ?? '';
  return {
    // The driver is made with its home already (deps.root); Init only acknowledges.
    'GraphDriver.Init': async () => ok(),
    'GraphDriver.Create': async (b) => (await d.create(id(b), b.Parent ?? '', createOptsOf(b)), ok()),
    'GraphDriver.CreateReadWrite': async (b) => (await d.createReadWrite(id(b), b.Parent ?? '', createOptsOf(b)), ok()),
    'GraphDriver.Remove': async (b) => (await d.remove(id(b)), ok()),
    'GraphDriver.Get': async (b) => ok({ Dir: await d.get(id(b), b.MountLabel || undefined) }),
    'GraphDriver.Put': async (b) => (await d.put(id(b)), ok()),
    'GraphDriver.Exists': async (b) => ok({ Exists: await d.exists(id(b)) }),
    'GraphDriver.Status': async () => ok({ Status: await d.status() }),
    'GraphDriver.GetMetadata': async (b) => ok({ Metadata: await d.getMetadata(id(b)) }),
    'GraphDriver.Cleanup': async () => (await d.cleanup(), ok()),
    'GraphDriver.Diff': async (b) => ({ stream: await d.diff(id(b), b.Parent ?? '') }),
    'GraphDriver.Changes': async (b) => ok({ Changes: (await d.changes(id(b), b.Parent ?? '')).map((c) => ({ Path: c.path, Kind: c.kind })) }),
    'GraphDriver.ApplyDiff': async (_b, q, raw) => ok({ Size: await d.applyDiff(q.get('id') ?? '', q.get('parent') ?? '', raw) }),
    'GraphDriver.DiffSize': async (b) => ok({ Size: await d.diffSize(id(b), b.Parent ?? '') }),
    'GraphDriver.Capabilities': async () => ok({ Capabilities: { ReproducesExactDiffs: (await d.capabilities()).reproducesExactDiffs } }),
  };
}

/** Methods whose request is the raw tar (no JSON body to parse). */
export const graphRawBodyMethods: ReadonlySet<string> = new Set(['GraphDriver.ApplyDiff']);

export interface RemoteGraphDriverOptions {
  name: string;
  /** Sent as `/GraphDriver.Init` before the first call (a Docker plugin needs it). */
  init?: GraphDriverWireInit;
}

/** Client side: a GraphDriver whose methods are calls of the plugin. */
export class RemoteGraphDriver implements GraphDriver {
  readonly name: string;
  #inited: Promise<void> | undefined;

  constructor(
    private readonly t: PluginTransport,
    private readonly opts: RemoteGraphDriverOptions,
  ) {
    this.name = opts.name;
  }

  async create(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    await this.#call('GraphDriver.Create', req(id, parent, opts));
  }
  async createReadWrite(id: string, parent: string, opts?: CreateOpts): Promise<void> {
    await this.#call('GraphDriver.CreateReadWrite', req(id, parent, opts));
  }
  async remove(id: string): Promise<void> {
    await this.#call('GraphDriver.Remove', req(id));
  }
  async get(id: string, mountLabel?: string): Promise<string> {
    const r = await this.#call('GraphDriver.Get', req(id, '', mountLabel ? { mountLabel } : undefined));
    if (typeof r.Dir !== 'string' || r.Dir === '') throw remoteError('GraphDriver.Get', 'the plugin answered no Dir');
    return r.Dir;
  }
  async put(id: string): Promise<void> {
    await this.#call('GraphDriver.Put', req(id));
  }
  async exists(id: string): Promise<boolean> {
    return (await this.#call('GraphDriver.Exists', req(id))).Exists === true;
  }
  async status(): Promise<[string, string][]> {
    return (await this.#call('GraphDriver.Status', {})).Status ?? [];
  }
  async getMetadata(id: string): Promise<Record<string, string>> {
    return (await this.#call('GraphDriver.GetMetadata', req(id))).Metadata ?? {};
  }
  async cleanup(): Promise<void> {
    await this.#call('GraphDriver.Cleanup', {});
  }
  async diff(id: string, parent: string): Promise<Readable> {
    await this.#init();
    const res = await this.t.postStream('/GraphDriver.Diff', encodeBody(req(id, parent)));
    if (res.statusCode !== 200) throw await this.#httpError('GraphDriver.Diff', res);
    return res;
  }
  async changes(id: string, parent: string): Promise<Change[]> {
    const r = await this.#call('GraphDriver.Changes', req(id, parent));
    return (r.Changes ?? []).map((c) => ({ path: c.Path, kind: c.Kind as ChangeKind }));
  }
  async applyDiff(id: string, parent: string, diff: Readable): Promise<number> {
    await this.#init();
    // Query values go in unescaped, as the engine does (ids are hex).
    const res = await this.t.postStream(`/GraphDriver.ApplyDiff?id=${id}&parent=${parent}`, diff, false);
    if (res.statusCode !== 200) throw await this.#httpError('GraphDriver.ApplyDiff', res);
    const r = this.#decode('GraphDriver.ApplyDiff', await this.t.readAll(res, 'GraphDriver.ApplyDiff'));
    return r.Size ?? 0;
  }
  async diffSize(id: string, parent: string): Promise<number> {
    return (await this.#call('GraphDriver.DiffSize', req(id, parent))).Size ?? 0;
  }
  async capabilities(): Promise<GraphDriverCapabilities> {
    const r = await this.#call('GraphDriver.Capabilities', {}, true);
    return { reproducesExactDiffs: r.Capabilities?.ReproducesExactDiffs === true };
  }

  #init(): Promise<void> {
    if (this.opts.init === undefined) return Promise.resolve();
    this.#inited ??= this.#raw('GraphDriver.Init', this.opts.init as unknown as GraphDriverWireRequest, false).then(
      () => undefined,
      (err: unknown) => {
        this.#inited = undefined;
        throw err;
      },
    );
    return this.#inited;
  }

  async #call(method: string, body: GraphDriverWireRequest, optional404 = false): Promise<GraphDriverWireResponse> {
    await this.#init();
    return this.#raw(method, body, optional404);
  }

  async #raw(method: string, body: GraphDriverWireRequest, optional404: boolean): Promise<GraphDriverWireResponse> {
    const res = await this.t.post(`/${method}`, encodeBody(body));
    if (res.status === 404 && optional404) return {};
    if (res.status !== 200) throw httpErrorOf(method, res.status, res.body);
    return this.#decode(method, res.body);
  }

  #decode(method: string, body: Buffer): GraphDriverWireResponse {
    let r: GraphDriverWireResponse & { BerthCode?: string };
    try {
      r = JSON.parse(body.toString('utf8')) as GraphDriverWireResponse;
    } catch (err) {
      throw remoteError(method, `bad answer: ${(err as Error).message}`, undefined, err);
    }
    if (typeof r !== 'object' || r === null) throw remoteError(method, 'bad answer: not a JSON object');
    if (typeof r.Err === 'string' && r.Err !== '') throw remoteError(method, r.Err, r.BerthCode);
    return r;
  }

  async #httpError(method: string, res: IncomingMessage): Promise<BerthError> {
    return httpErrorOf(method, res.statusCode ?? 0, await this.t.readAll(res, method));
  }
}

/** A non-200 answer: the message is the body's `Err` (or `Error`) if JSON, else the raw body. */
export function httpErrorOf(method: string, status: number, body: Buffer): BerthError {
  const text = body.toString('utf8').trim();
  let msg = text === '' ? `HTTP ${status}` : text;
  let code: unknown;
  try {
    const j = JSON.parse(text) as { Err?: unknown; Error?: unknown; BerthCode?: unknown };
    const e = typeof j.Err === 'string' && j.Err !== '' ? j.Err : typeof j.Error === 'string' && j.Error !== '' ? j.Error : undefined;
    if (e !== undefined) {
      msg = e;
      code = j.BerthCode;
    }
  } catch {
    // not JSON: the raw body is the message
  }
  const err = remoteError(method, msg, code);
  (err.details as Record<string, unknown>).status = status;
  return err;
}
