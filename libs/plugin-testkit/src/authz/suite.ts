import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { connect, serve } from '@berth/plugin';
import type { AuthzPlugin, AuthzRequest } from '@berth/plugin-api';

export interface AuthzPluginHarness {
  plugin: AuthzPlugin;
  cleanup(): Promise<void>;
}

/** One decision the plugin claims: this request (AuthZReq) or this request + answer (AuthZRes) is allowed or not. */
export interface AuthzCase {
  title: string;
  call: 'AuthZReq' | 'AuthZRes';
  req: AuthzRequest;
  allow: boolean;
}

export interface AuthzPluginSuiteOptions {
  /** The plugin's own decisions, checked in-process and over the socket (the wire must not change them). */
  cases?: readonly AuthzCase[];
  transports?: readonly ('in-process' | 'socket')[];
  timeout?: number;
}

/** A JSON body as the engine sends it: base64 of the raw bytes. */
export const authzBody = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64');

/** The plugin served on a temp socket and reached through connect()'s client (its errors are the engine's). */
function overSocket(make: () => Promise<AuthzPluginHarness>): () => Promise<AuthzPluginHarness> {
  return async () => {
    const h = await make();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), `berth-authz-sock-${process.pid}-`));
    const server = await serve({ authz: h.plugin }, path.join(dir, 'authz.sock'));
    const client = connect(server.socketPaths[0]!, 'authz', { retry: { timeoutMs: 0 } });
    return {
      plugin: client,
      cleanup: async () => {
        client.close();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
        await h.cleanup();
      },
    };
  };
}

/**
 * Registers the authorization-plugin contract (specs/plugin-protocol.md §9) under
 * `describe(name)`, in-process and over the plugin socket: a verdict for what the engine sends
 * (sparse objects, every field, odd URIs), and the plugin's own `cases`.
 */
export function authzPluginSuite(name: string, makePlugin: () => Promise<AuthzPluginHarness>, opts: AuthzPluginSuiteOptions = {}): void {
  const timeout = opts.timeout ?? 30_000;
  for (const transport of opts.transports ?? ['in-process', 'socket']) {
    const make = transport === 'socket' ? overSocket(makePlugin) : makePlugin;
    const run = (fn: (p: AuthzPlugin) => Promise<void>) => async () => {
      const h = await make();
      try {
        await fn(h.plugin);
      } finally {
        await h.cleanup();
      }
    };
    const verdict = (v: unknown, what: string): void => {
      assert.equal(typeof v, 'object', `${what}: a verdict object`);
      const r = v as { Allow?: unknown; Msg?: unknown };
      assert.equal(typeof r.Allow, 'boolean', `${what}: Allow is a boolean`);
      if (r.Msg !== undefined) assert.equal(typeof r.Msg, 'string', `${what}: Msg is a string`);
    };

    describe(`${name} authz plugin contract (${transport})`, () => {
      it('answers a verdict for the sparsest request (every field is omitempty) and for /_ping', { timeout }, run(async (p) => {
        verdict(await p.authZReq({}), 'AuthZReq {}');
        verdict(await p.authZReq({ RequestMethod: 'GET', RequestUri: '/_ping' }), 'AuthZReq /_ping');
        verdict(await p.authZRes({ RequestMethod: 'GET', RequestUri: '/_ping', ResponseStatusCode: 200 }), 'AuthZRes /_ping');
      }));

      it('answers a verdict for a full request and its answer (body, headers, query, version prefix)', { timeout }, run(async (p) => {
        const req: AuthzRequest = {
          RequestMethod: 'POST',
          RequestUri: '/v1.41/containers/create?name=x',
          RequestBody: authzBody({ Image: 'busybox', HostConfig: {} }),
          RequestHeaders: { 'Content-Type': 'application/json', 'User-Agent': 'Docker-Client/20.10.24 (linux)' },
        };
        verdict(await p.authZReq(req), 'AuthZReq create');
        verdict(
          await p.authZRes({ ...req, ResponseStatusCode: 201, ResponseHeaders: { 'Content-Type': 'application/json' }, ResponseBody: authzBody({ Id: 'a'.repeat(64), Warnings: [] }) }),
          'AuthZRes create',
        );
      }));

      it('a body that is not JSON or not base64 of JSON is no reason to fail', { timeout }, run(async (p) => {
        verdict(await p.authZReq({ RequestMethod: 'POST', RequestUri: '/v1.41/build', RequestBody: Buffer.from('\u0000tar').toString('base64') }), 'AuthZReq binary body');
      }));

      for (const c of opts.cases ?? []) {
        it(`${c.call} ${c.req.RequestMethod ?? ''} ${c.req.RequestUri ?? ''}: ${c.allow ? 'allowed' : 'refused'} (${c.title})`, { timeout }, run(async (p) => {
          const got = c.call === 'AuthZReq' ? await p.authZReq(c.req) : await p.authZRes(c.req);
          assert.equal(got.Allow, c.allow, `${c.title}: ${got.Msg ?? ''}`);
          if (!c.allow) assert.ok((got.Msg ?? '') !== '', 'a refusal says why (Msg is shown to the client)');
        }));
      }
    });
  }
}
