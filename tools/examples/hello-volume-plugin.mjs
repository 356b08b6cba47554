#!/usr/bin/env node
// A complete volume plugin in one file: each volume is a directory under --root, served with
// Berth's SDK over Docker's VolumeDriver protocol. Mounts are counted by their ID, as the
// protocol asks; every call is logged to stderr. See docs/volumes.md.
//
//   node tools/examples/hello-volume-plugin.mjs [name] [--root <dir>] [--dir <socket dir>] [--docker]
//   berth volume create -d hello -o color=blue myvol
//   berth run --rm -v myvol:/data busybox sh -c 'echo hi > /data/f'
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { closeOnSignal, pluginCommandLine, serveVolumePlugin } from '@berth/plugin';

const { options, values } = pluginCommandLine(process.argv.slice(2), 'hello', ['--root']);
const { name } = options;
const root = values['--root'] ?? '/var/lib/hello-volumes';

const volumes = new Map(); // Name -> { opts, createdAt, mounts: Set of mount IDs }
const fail = (msg) => {
  throw new Error(msg);
};
const vol = (n) => volumes.get(n) ?? fail(`volume ${n} not found`);
const pathOf = (n) => join(root, n);
const log = (method, req) => console.error(`${name}: ${method} ${JSON.stringify(req ?? {})}`);

const driver = {
  name,
  async create(req) {
    log('Create', req);
    if (Object.keys(req.Opts ?? {}).some((k) => k !== 'color')) fail(`unknown option (only color is known)`);
    mkdirSync(pathOf(req.Name), { recursive: true });
    volumes.set(req.Name, { opts: req.Opts ?? {}, createdAt: new Date().toISOString(), mounts: new Set() });
  },
  async remove(req) {
    log('Remove', req);
    if (vol(req.Name).mounts.size) fail(`volume ${req.Name} is mounted`);
    rmSync(pathOf(req.Name), { recursive: true, force: true });
    volumes.delete(req.Name);
  },
  async mount(req) {
    log('Mount', req);
    vol(req.Name).mounts.add(req.ID);
    return { Mountpoint: pathOf(req.Name) };
  },
  async unmount(req) {
    log('Unmount', req);
    vol(req.Name).mounts.delete(req.ID);
  },
  async path(req) { log('Path', req); vol(req.Name); return { Mountpoint: pathOf(req.Name) }; },
  async get(req) {
    log('Get', req);
    const v = volumes.get(req.Name);
    return { Volume: v ? { Name: req.Name, Mountpoint: pathOf(req.Name), CreatedAt: v.createdAt, Status: { color: v.opts.color ?? 'none', mounts: v.mounts.size } } : null };
  },
  async list() { log('List'); return { Volumes: [...volumes.keys()].map((n) => ({ Name: n, Mountpoint: pathOf(n) })) }; },
  async capabilities() { log('Capabilities'); return { Capabilities: { Scope: 'local' } }; },
};

mkdirSync(root, { recursive: true });
closeOnSignal(await serveVolumePlugin(driver, options), name);
