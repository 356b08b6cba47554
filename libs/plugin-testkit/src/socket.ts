/**
 * Harness wrappers that put a driver behind the plugin socket: the driver is served with
 * @berth/plugin's serve() on a fresh temp socket, and the suite talks to connect()'s client,
 * so every case also proves the transport.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, serve } from '@berth/plugin';
import type { GraphDriverHarness } from './graph/suite.js';
import type { NetworkDriverHarness } from './network/suite.js';
import type { IpamDriverHarness } from './ipam/suite.js';

async function socketDir(kind: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `berth-${kind}-sock-${process.pid}-`));
}

export function networkOverSocket(make: () => Promise<NetworkDriverHarness>): () => Promise<NetworkDriverHarness> {
  return async () => {
    const h = await make();
    const dir = await socketDir('net');
    const server = await serve({ network: h.driver }, path.join(dir, `${h.driver.name}.sock`));
    const client = connect(server.socketPaths[0]!, 'NetworkDriver', { name: h.driver.name, retry: { timeoutMs: 0 } });
    return {
      ...h,
      driver: client,
      cleanup: async () => {
        client.close();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
        await h.cleanup();
      },
    };
  };
}

export function ipamOverSocket(make: () => Promise<IpamDriverHarness>): () => Promise<IpamDriverHarness> {
  return async () => {
    const h = await make();
    const dir = await socketDir('ipam');
    const server = await serve({ ipam: h.driver }, path.join(dir, `${h.driver.name}.sock`));
    const client = connect(server.socketPaths[0]!, 'IpamDriver', { name: h.driver.name, retry: { timeoutMs: 0 } });
    return {
      ...h,
      driver: client,
      cleanup: async () => {
        client.close();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
        await h.cleanup();
      },
    };
  };
}

export function graphOverSocket(make: () => Promise<GraphDriverHarness>): () => Promise<GraphDriverHarness> {
  return async () => {
    const h = await make();
    const dir = await socketDir('graph');
    const server = await serve({ graph: h.driver }, path.join(dir, `${h.driver.name}.sock`));
    const client = connect(server.socketPaths[0]!, 'GraphDriver', { name: h.driver.name, retry: { timeoutMs: 0 } });
    return {
      ...h,
      driver: client,
      cleanup: async () => {
        try {
          await h.cleanup();
        } finally {
          client.close();
          await server.close();
          await fs.rm(dir, { recursive: true, force: true });
        }
      },
    };
  };
}
