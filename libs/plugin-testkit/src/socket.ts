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
import type { VolumeDriverHarness } from './volume/suite.js';

async function socketDir(kind: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `berth-${kind}-sock-${process.pid}-`));
}

interface DriverHarness<D extends { readonly name: string }> {
  driver: D;
  cleanup(): Promise<void>;
}

/** The network or IPAM harness `make` gives, with its driver served and reached over a socket. */
function overSocket<D extends { readonly name: string }, H extends DriverHarness<D>>(
  kind: 'network' | 'ipam',
  make: () => Promise<H>,
): () => Promise<H> {
  return async () => {
    const h = await make();
    const dir = await socketDir(kind);
    const server = await serve({ [kind]: h.driver }, path.join(dir, `${h.driver.name}.sock`));
    const opts = { name: h.driver.name, retry: { timeoutMs: 0 } };
    const client = kind === 'network' ? connect(server.socketPaths[0]!, 'NetworkDriver', opts) : connect(server.socketPaths[0]!, 'IpamDriver', opts);
    return {
      ...h,
      driver: client as unknown as D,
      cleanup: async () => {
        client.close();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
        await h.cleanup();
      },
    };
  };
}

export function networkOverSocket(make: () => Promise<NetworkDriverHarness>): () => Promise<NetworkDriverHarness> {
  return overSocket('network', make);
}

export function ipamOverSocket(make: () => Promise<IpamDriverHarness>): () => Promise<IpamDriverHarness> {
  return overSocket('ipam', make);
}

export function volumeOverSocket(make: () => Promise<VolumeDriverHarness>): () => Promise<VolumeDriverHarness> {
  return async () => {
    const h = await make();
    const dir = await socketDir('volume');
    const server = await serve({ volume: h.driver }, path.join(dir, `${h.driver.name}.sock`));
    const client = connect(server.socketPaths[0]!, 'VolumeDriver', { name: h.driver.name, retry: { timeoutMs: 0 } });
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
