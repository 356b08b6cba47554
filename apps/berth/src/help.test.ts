import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const berth = (...args: string[]): string => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST: 'unix:///nonexistent.sock' } });

test('management commands: the main help lists system; a group help lists each subcommand once with its description', () => {
  assert.match(berth('--help'), /\n {2}system {6}Manage Berth\n/);
  const sys = berth('system', '--help');
  for (const line of ['  df         Show Berth disk usage', '  events     Get real time events from the server', '  info       Display system-wide information', '  prune      Remove unused data'])
    assert.ok(sys.includes(`${line}\n`), sys);
  assert.equal(berth('system'), sys);
  const ctr = berth('container', '--help');
  assert.match(ctr, /\n {2}kernel {5}Show what a running container's run made in the kernel/);
  assert.match(ctr, /\n {2}ls {9}List containers\n/);
  assert.doesNotMatch(ctr, /\n {2}(list|ps|remove) /, 'aliases are not listed twice');
});
