#!/usr/bin/env node
// An authorization plugin in one file, served with Berth's SDK over Docker's AuthZPlugin
// protocol: it refuses privileged containers (POST /containers/create with
// HostConfig.Privileged) and volume removal (DELETE /volumes/<name>, POST /volumes/prune),
// allows everything else, and logs each call (method, URI, status) to stderr. See docs/plugins.md.
//
//   node tools/examples/hello-authz-plugin.mjs [name] [--dir <socket dir>] [--docker]
//   berthd --authorization-plugin hello-authz        (dockerd takes the same flag)
//   berth run --rm --privileged busybox true   ->  authorization denied by plugin hello-authz: ...
import { closeOnSignal, pluginCommandLine, serveAuthzPlugin } from '@berth/plugin';

const { options } = pluginCommandLine(process.argv.slice(2), 'hello-authz');
const { name } = options;

/** The API path without its /v1.xx prefix and query: what the rules look at. */
const pathOf = (uri = '') => uri.replace(/^\/v\d+(\.\d+)?(?=\/)/, '').split('?')[0];

/** RequestBody is base64 of the raw JSON, sent only for application/json bodies under 1 MiB. */
function bodyOf(req) {
  if (!req.RequestBody) return undefined;
  try {
    return JSON.parse(Buffer.from(req.RequestBody, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

function verdict(req) {
  const method = req.RequestMethod;
  const p = pathOf(req.RequestUri);
  if (method === 'POST' && p === '/containers/create' && bodyOf(req)?.HostConfig?.Privileged === true)
    return { Allow: false, Msg: 'privileged containers are not allowed here' };
  if ((method === 'DELETE' && p.startsWith('/volumes/')) || (method === 'POST' && p === '/volumes/prune'))
    return { Allow: false, Msg: 'volumes may not be removed' };
  return { Allow: true };
}

const plugin = {
  async authZReq(req) {
    const v = verdict(req);
    console.error(`${name}: AuthZReq ${req.RequestMethod} ${req.RequestUri} -> ${v.Allow ? 'allow' : `deny (${v.Msg})`}`);
    return v;
  },
  async authZRes(req) {
    console.error(`${name}: AuthZRes ${req.RequestMethod} ${req.RequestUri} ${req.ResponseStatusCode}`);
    return { Allow: true };
  },
};

closeOnSignal(await serveAuthzPlugin(plugin, options), name);
