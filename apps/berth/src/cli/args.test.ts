import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs, UsageError, type CommandSpec } from './args.js';

const spec: CommandSpec = {
  usage: 'run',
  description: '',
  stopAtFirstPositional: true,
  flags: [
    { name: 'interactive', short: 'i', type: 'bool' },
    { name: 'tty', short: 't', type: 'bool' },
    { name: 'detach', short: 'd', type: 'bool' },
    { name: 'env', short: 'e', type: 'list' },
    { name: 'publish', short: 'p', type: 'list' },
    { name: 'name', type: 'string' },
    { name: 'network', type: 'string', aliases: ['net'] },
    { name: 'hostname', short: 'h', type: 'string' },
    { name: 'cpu-shares', short: 'c', type: 'int' },
    { name: 'sig-proxy', type: 'bool', default: true },
  ],
};

test('clusters, attached values, = forms and repeated lists', () => {
  const p = parseArgs(spec, ['-it', '-eA=1', '-e', 'B=2', '--env=C=3', '--env', 'D', '-p80:80', '--name=x', '--net', 'host', 'img']);
  assert.equal(p.flags.interactive, true);
  assert.equal(p.flags.tty, true);
  assert.deepEqual(p.flags.env, ['A=1', 'B=2', 'C=3', 'D']);
  assert.deepEqual(p.flags.publish, ['80:80']);
  assert.equal(p.flags.name, 'x');
  assert.equal(p.flags.network, 'host');
  assert.deepEqual(p.args, ['img']);
});

test('flags stop at the image so the command keeps its own flags', () => {
  const p = parseArgs(spec, ['-d', 'busybox', 'sh', '-c', 'echo hi -it']);
  assert.deepEqual(p.args, ['busybox', 'sh', '-c', 'echo hi -it']);
  assert.equal(p.flags.detach, true);
  assert.equal(p.flags.interactive, false);
});

test('-- ends flags; --rm=false style booleans; int values; -h is a flag when the command has it', () => {
  const p = parseArgs(spec, ['--sig-proxy=false', '-c', '512', '-h', 'box', '--', '-weird']);
  assert.equal(p.flags['sig-proxy'], false);
  assert.equal(p.flags['cpu-shares'], 512);
  assert.equal(p.flags.hostname, 'box');
  assert.deepEqual(p.args, ['-weird']);
  assert.ok(p.given.has('cpu-shares'));
  assert.ok(!p.given.has('name'));
});

test('interspersed flags without stopAtFirstPositional; --help', () => {
  const p = parseArgs({ flags: [{ name: 'force', short: 'f', type: 'bool' }] }, ['a', '-f', 'b', '--help']);
  assert.deepEqual(p.args, ['a', 'b']);
  assert.equal(p.flags.force, true);
  assert.equal(p.help, true);
});

test('unknown flags and missing values are usage errors with docker wording', () => {
  assert.throws(() => parseArgs(spec, ['--nope']), new UsageError('unknown flag: --nope'));
  assert.throws(() => parseArgs(spec, ['-x']), new UsageError("unknown shorthand flag: 'x' in -x"));
  assert.throws(() => parseArgs(spec, ['--name']), /flag needs an argument: --name/);
  assert.throws(() => parseArgs(spec, ['-c', 'abc']), /invalid argument "abc"/);
});
