/** The endpoint port map kept as runs, and state written before runs (one binding per entry). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressBindings, expandBindings, type PortBinding } from '@berth/plugin-api';
import { runsOf } from './state.js';

const b = (Port: number, HostPort: number, over: Partial<PortBinding> = {}): PortBinding => ({ Proto: 17, IP: '10.0.0.2', Port, HostIP: '', HostPort, HostPortEnd: HostPort, ...over });

test('a 10,000-port range is kept as one run and given back as the same 10,000 bindings', () => {
  const range = Array.from({ length: 10_000 }, (_, i) => b(41000 + i, 41000 + i));
  const runs = runsOf(compressBindings(range));
  assert.equal(runs.length, 1);
  assert.deepEqual(expandBindings(runs), range);
});

test('a port map of state written before runs (no Count) reads as one run per binding; random lists round-trip', () => {
  const old = [b(80, 8080), b(81, 8081), b(85, 0, { HostPortEnd: 0 }), b(90, 100, { HostPortEnd: 110 }), b(92, 102, { HostIP: '127.0.0.1' })];
  assert.deepEqual(runsOf(old).map((r) => r.Count), [1, 1, 1, 1, 1]);
  assert.deepEqual(expandBindings(runsOf(old)), old);
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
    const runs = runsOf(compressBindings(list));
    assert.ok(runs.length <= list.length);
    assert.deepEqual(expandBindings(runs), list, JSON.stringify(list));
  }
});
