import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOomKills } from './oom.js';

test('oom: the oom_kill counter of v1 memory.oom_control and v2 memory.events', () => {
  assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n'), 3);
  assert.equal(parseOomKills('low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n'), 1);
  // A kernel before 4.13 has no counter: unknown, not zero.
  assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\n'), null);
});
