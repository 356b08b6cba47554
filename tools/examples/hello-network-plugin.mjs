#!/usr/bin/env node
// A complete network plugin in one file: an in-memory driver served with Berth's SDK.
// It makes no interfaces (Join answers none, like the `null` driver), so containers on its
// networks get a namespace with only lo; it logs every call to stderr. See docs/plugins.md.
//
//   node tools/examples/hello-network-plugin.mjs [name] [--dir <socket dir>] [--docker]
//   berth network create -d hello hellonet
import { closeOnSignal, pluginCommandLine, serveNetworkPlugin } from '@berth/plugin';

const { options } = pluginCommandLine(process.argv.slice(2), 'hello');
const { name } = options;

const networks = new Map(); // NetworkID -> Set of EndpointIDs
const fail = (msg) => {
  throw new Error(msg);
};
const net = (id) => networks.get(id) ?? fail(`network ${id} not found`);
const log = (method, req) => console.error(`${name}: ${method} ${JSON.stringify(req ?? {})}`);

const driver = {
  name,
  async getCapabilities() { log('GetCapabilities'); return { Scope: 'local', ConnectivityScope: 'local' }; },
  async createNetwork(req) { log('CreateNetwork', req); networks.set(req.NetworkID, new Set()); },
  async deleteNetwork(req) { log('DeleteNetwork', req); net(req.NetworkID); networks.delete(req.NetworkID); },
  async createEndpoint(req) {
    log('CreateEndpoint', req);
    const eps = net(req.NetworkID);
    if (eps.has(req.EndpointID)) fail(`endpoint ${req.EndpointID} exists`);
    eps.add(req.EndpointID);
    return {}; // fill nothing: the engine's addresses stand
  },
  async endpointOperInfo(req) { log('EndpointOperInfo', req); return { Value: {} }; },
  async deleteEndpoint(req) { log('DeleteEndpoint', req); if (!net(req.NetworkID).delete(req.EndpointID)) fail(`endpoint ${req.EndpointID} not found`); },
  async join(req) { log('Join', req); if (!net(req.NetworkID).has(req.EndpointID)) fail(`endpoint ${req.EndpointID} not found`); return {}; },
  async leave(req) { log('Leave', req); },
  async programExternalConnectivity(req) { log('ProgramExternalConnectivity', req); },
  async revokeExternalConnectivity(req) { log('RevokeExternalConnectivity', req); },
  async allocateNetwork(req) { return { Options: req.Options ?? {} }; },
  async freeNetwork() {},
  async discoverNew() {},
  async discoverDelete() {},
};

closeOnSignal(await serveNetworkPlugin(driver, options), name);
