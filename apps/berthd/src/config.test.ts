import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { DEFAULTS, loadConfig, mergeConfig, parseConfigFile, parseFlags } from './config.js';
import { acquirePidfile } from './pidfile.js';

test('flags: repeatable -H, short forms, unknown flags refused', () => {
  const a = parseFlags(['-H', 'unix:///tmp/a.sock', '--host', 'tcp://127.0.0.1:2375', '--data-root', '/d', '-l', 'debug', '--live-restore']);
  assert.deepEqual(a.flags, { hosts: ['unix:///tmp/a.sock', 'tcp://127.0.0.1:2375'], dataRoot: '/d', logLevel: 'debug', liveRestore: true });
  assert.throws(() => parseFlags(['--nope']), /Unknown option '--nope'/);
  assert.throws(() => parseFlags(['--log-level', 'loud']), /unknown log level "loud"/);
});

test('defaults when neither flags nor file say anything', () => {
  const c = mergeConfig({}, {}, '/etc/berth/daemon.json');
  assert.equal(c.dataRoot, '/var/lib/berth');
  assert.equal(c.execRoot, '/run/berth');
  assert.deepEqual(c.hosts, ['unix:///run/berth/berth.sock']);
  assert.equal(c.pidfile, '/run/berth/berthd.pid');
  assert.equal(c.storageDriver, ''); // chosen at start: the one holding images, else by probe
  assert.equal(c.logLevel, 'info');
});

test('daemon.json: Docker key names, types checked, unknown keys refused', () => {
  const c = parseConfigFile('{"data-root":"/x","hosts":["unix:///s"],"log-level":"warn","storage-driver":"vfs","live-restore":false,"exec-root":"/e","pidfile":"/p"}', 'f.json');
  assert.deepEqual(c, { dataRoot: '/x', hosts: ['unix:///s'], logLevel: 'warn', storageDriver: 'vfs', liveRestore: false, execRoot: '/e', pidfile: '/p' });
  assert.throws(() => parseConfigFile('{"graph":"/x"}', 'f.json'), /the following directives don't match any configuration option: graph/);
  assert.throws(() => parseConfigFile('{"hosts":"unix:///s"}', 'f.json'), /hosts must be an array of strings/);
  assert.throws(() => parseConfigFile('{"live-restore":"yes"}', 'f.json'), /live-restore must be a boolean/);
  assert.throws(() => parseConfigFile('{', 'f.json'), /unable to configure the daemon with file f\.json/);
});

test('a setting both as a flag and in the file is an error naming both values', () => {
  assert.throws(
    () => mergeConfig({ hosts: ['unix:///a'], dataRoot: '/f' }, { hosts: ['unix:///b'] }, '/etc/berth/daemon.json'),
    /the following directives are specified both as a flag and in the configuration file: hosts: \(from flag: \[unix:\/\/\/a\], from file: \[unix:\/\/\/b\]\)/,
  );
  const c = mergeConfig({ dataRoot: '/f' }, { execRoot: '/e' }, 'x');
  assert.equal(c.dataRoot, '/f');
  assert.equal(c.execRoot, '/e');
});

test('loadConfig: a missing file is no file; a present one is merged with the flags', async () => {
  const dir = mkdtempSync(join(tmpdir(), `berthd-cfg-${process.pid}-`));
  try {
    const none = await loadConfig(parseFlags(['--config-file', join(dir, 'none.json')]));
    assert.equal(none.fileFound, false);
    assert.equal(none.dataRoot, '/var/lib/berth');
    writeFileSync(join(dir, 'd.json'), '{"storage-driver":"vfs"}');
    const c = await loadConfig(parseFlags(['--config-file', join(dir, 'd.json'), '--data-root', '/r']));
    assert.equal(c.storageDriver, 'vfs');
    assert.equal(c.dataRoot, '/r');
    assert.equal(c.configFile, join(dir, 'd.json'));
    assert.equal(c.fileFound, true);
    writeFileSync(join(dir, 'bad.json'), '{"hosts":["unix:///x"]}');
    await assert.rejects(loadConfig(parseFlags(['--config-file', join(dir, 'bad.json'), '-H', 'unix:///y'])), /specified both as a flag and in the configuration file/);
    assert.equal(DEFAULTS.configFile, '/etc/berth/daemon.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pid file: written, refused while a live berthd holds it, stale ones replaced, removed on release', async () => {
  const dir = mkdtempSync(join(tmpdir(), `berthd-pid-${process.pid}-`));
  const path = join(dir, 'sub', 'berthd.pid');
  // A live process whose command line says berthd.
  const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', 'berthd'], { stdio: 'ignore' });
  try {
    const release = await acquirePidfile(path);
    const { readFileSync, existsSync } = await import('node:fs');
    assert.equal(readFileSync(path, 'utf8'), `${process.pid}\n`);
    await release();
    assert.equal(existsSync(path), false);

    writeFileSync(path, `${holder.pid}\n`);
    await assert.rejects(acquirePidfile(path), /pid file found, ensure berthd is not running or delete/);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    const again = await acquirePidfile(path); // stale: its process is gone
    await again();
  } finally {
    holder.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('insecure registries: repeatable --insecure-registry, insecure-registries in daemon.json, none by default', () => {
  assert.deepEqual(parseFlags(['--insecure-registry', 'reg.local:5000', '--insecure-registry', '10.0.0.0/8']).flags.insecureRegistries, ['reg.local:5000', '10.0.0.0/8']);
  assert.deepEqual(parseConfigFile('{"insecure-registries": ["reg.local:5000"]}', '/x.json').insecureRegistries, ['reg.local:5000']);
  assert.throws(() => parseConfigFile('{"insecure-registries": "reg.local:5000"}', '/x.json'), /insecure-registries must be an array of strings/);
  assert.deepEqual(mergeConfig({}, {}, '/x.json').insecureRegistries, []);
});

test('--live-restore=false and =true, as Go booleans', () => {
  assert.equal(parseFlags(['--live-restore=false']).flags.liveRestore, false);
  assert.equal(parseFlags(['--live-restore=0']).flags.liveRestore, false);
  assert.equal(parseFlags(['--live-restore=true']).flags.liveRestore, true);
  assert.equal(parseFlags(['--live-restore']).flags.liveRestore, true);
  assert.throws(() => parseFlags(['--live-restore=maybe']), /invalid boolean value "maybe" for --live-restore/);
});

test('authorization plugins: repeatable --authorization-plugin (chain order), authorization-plugins in daemon.json, bad names refused, none by default', () => {
  assert.deepEqual(parseFlags(['--authorization-plugin', 'opa', '--authorization-plugin=audit']).flags, { authorizationPlugins: ['opa', 'audit'] });
  assert.deepEqual(DEFAULTS.authorizationPlugins, []);
  assert.deepEqual(parseConfigFile('{"authorization-plugins": ["a", "b"]}', '/x.json'), { authorizationPlugins: ['a', 'b'] });
  for (const bad of ['', '../x', 'a/b', 'a b', '..']) {
    assert.throws(() => parseFlags(['--authorization-plugin', bad]), (err: Error & { code?: string }) => err.code === 'BERTH_INVALID_ARGUMENT' && /invalid authorization plugin name/.test(err.message), bad);
    assert.throws(() => parseConfigFile(JSON.stringify({ 'authorization-plugins': [bad] }), '/x.json'), /invalid authorization plugin name/, bad);
  }
  assert.throws(() => parseConfigFile('{"authorization-plugins": "a"}', '/x.json'), /authorization-plugins must be an array of strings/);
  assert.throws(
    () => mergeConfig({ authorizationPlugins: ['a'] }, { authorizationPlugins: ['b'] }, '/x.json'),
    /specified both as a flag and in the configuration file: authorization-plugins: \(from flag: \[a\], from file: \[b\]\)/,
  );
});
