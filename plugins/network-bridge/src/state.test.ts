/** The endpoint port map kept as runs: compressed, and expanded back to exactly what was given. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PortBinding } from '@berth/plugin-api';
import { bindingRuns, expandRuns } from './state.js';

const b = (Port: number, HostPort: number, over: Partial<PortBinding> = {}): PortBinding => ({ Proto: 17, IP: '10.0.0.2', Port, HostIP: '', HostPort, HostPortEnd: HostPort, ...over });

test('a 10,000-port range is one run, and expands back to the same 10,000 bindings', () => {
  const range = Array.from({ length: 10_000 }, (_, i) => b(41000 + i, 41000 + i));
  const runs = bindingRuns(range);
  assert.deepEqual(runs, [{ ...b(41000, 41000), count: 10_000 }]);
  assert.deepEqual(expandRuns(runs), range);
});

test('runs break where anything but the step differs; random lists round-trip exactly', () => {
  const mixed = [b(80, 8080), b(81, 8081), b(82, 9000), b(83, 9001), b(84, 9002, { Proto: 6 }), b(85, 0), b(86, 0), b(90, 100, { HostPortEnd: 110 }), b(91, 101), b(92, 102, { HostIP: '127.0.0.1' })];
  assert.deepEqual(
    bindingRuns(mixed).map((r) => [r.Port, r.HostPort, r.count ?? 1]),
    [[80, 8080, 2], [82, 9000, 2], [84, 9002, 1], [85, 0, 1], [86, 0, 1], [90, 100, 1], [91, 101, 1], [92, 102, 1]],
  );
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let round = 0; round < 200; round++) {
    const list: PortBinding[] = [];
    let port = 1 + rnd(100);
    let host = rnd(3) === 0 ? 0 : 1000 + rnd(100);
    for (let i = rnd(40); i > 0; i--) {
      list.push(b(port, host, { Proto: rnd(4) === 0 ? 6 : 17, HostIP: rnd(5) === 0 ? '127.0.0.1' : '' }));
      port += rnd(3) === 0 ? 2 : 1;
      host = host === 0 || rnd(4) === 0 ? (rnd(2) ? 0 : 2000 + rnd(50)) : host + 1;
    }
    const runs = bindingRuns(list);
    assert.ok(runs.length <= list.length);
    assert.deepEqual(expandRuns(runs), list, JSON.stringify(list));
  }
  // State written before runs: one binding per entry, no count.
  assert.deepEqual(expandRuns(mixed), mixed);
});
