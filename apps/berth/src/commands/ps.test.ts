import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PortSummary } from '@berth/api/wire';
import { displayPorts, type PortRun } from './ps.js';

/** berthd's compression (libs/engine network.ts): consecutive entries in list order as one run. */
function compress(list: PortSummary[]): PortRun[] {
  const out: PortRun[] = [];
  let last: PortRun | undefined;
  for (const p of list) {
    if (last && p.Type === last.Type && p.IP === last.IP) {
      const k = last.Count ?? 1;
      const pub = last.PublicPort === undefined ? p.PublicPort === undefined : p.PublicPort === last.PublicPort + k;
      if (pub && p.PrivatePort === last.PrivatePort + k) {
        last.Count = k + 1;
        continue;
      }
    }
    last = { ...p };
    out.push(last);
  }
  return out;
}

function range(ip: string | undefined, first: number, count: number, pub: number | undefined, type: string): PortSummary[] {
  return Array.from({ length: count }, (_, i) => ({
    ...(ip === undefined ? {} : { IP: ip }),
    PrivatePort: first + i,
    ...(pub === undefined ? {} : { PublicPort: pub === 0 ? 0 : pub + i }),
    Type: type,
  }));
}

test('berth ps prints a 10,000-port range as docker does: one compressed range', () => {
  const ports = range('0.0.0.0', 41000, 10_000, 41000, 'udp');
  assert.equal(displayPorts(ports), '0.0.0.0:41000-50999->41000-50999/udp');
  assert.deepEqual(compress(ports), [{ IP: '0.0.0.0', PrivatePort: 41000, PublicPort: 41000, Type: 'udp', Count: 10_000 }]);
  assert.equal(displayPorts(compress(ports)), '0.0.0.0:41000-50999->41000-50999/udp');
});

test('ps ports as runs (berthPortRuns) print the same as one entry per port', () => {
  const cases: PortSummary[][] = [
    [],
    range('0.0.0.0', 80, 1, 8080, 'tcp'),
    [...range('0.0.0.0', 80, 11, 8000, 'tcp'), ...range('0.0.0.0', 80, 11, 9000, 'tcp')],
    [...range('0.0.0.0', 41000, 300, 41000, 'udp'), ...range('::', 41000, 300, 41000, 'udp'), ...range(undefined, 7000, 5, undefined, 'tcp')],
    [...range('127.0.0.1', 5000, 20, 5000, 'tcp'), ...range('127.0.0.1', 5021, 5, 5021, 'tcp'), ...range('0.0.0.0', 5010, 3, 0, 'tcp')],
    [...range(undefined, 100, 10, undefined, 'tcp'), ...range(undefined, 105, 10, undefined, 'udp'), ...range('0.0.0.0', 110, 4, 110, 'tcp')],
  ];
  // and random ones: a few runs of each kind, overlapping and adjacent
  let seed = 42;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  for (let k = 0; k < 200; k++) {
    const list: PortSummary[] = [];
    for (let r = 0; r < 1 + rnd(5); r++) {
      const ip = [undefined, '0.0.0.0', '127.0.0.1', '::'][rnd(4)];
      const first = 1000 + rnd(40);
      const kind = rnd(3);
      const pub = ip === undefined ? undefined : kind === 0 ? first : kind === 1 ? 2000 + rnd(40) : 0;
      list.push(...range(ip, first, 1 + rnd(12), pub, ['tcp', 'udp'][rnd(2)]!));
    }
    // a daemon lists a port that a range takes in once (published or only exposed, not both)
    const seen = new Set<string>();
    cases.push(
      list.filter((p) => {
        if (p.IP !== undefined && p.PublicPort !== p.PrivatePort) return true;
        const key = `${p.IP}/${p.Type}/${p.PrivatePort}`;
        return !seen.has(key) && !!seen.add(key);
      }),
    );
  }
  for (const list of cases) assert.equal(displayPorts(compress(list)), displayPorts(list), JSON.stringify(list));
});
