import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetDev, parseProcStat, toDockerSections } from './stats.js';

test('stats: system CPU time is user..softirq of /proc/stat in nanoseconds (Docker sums those seven)', () => {
  const text = 'cpu  100 2 30 4000 5 6 7 8 0 0\ncpu0 50 1 15 2000 2 3 3 4 0 0\nintr 1\n';
  assert.equal(parseProcStat(text), (100 + 2 + 30 + 4000 + 5 + 6 + 7) * 10_000_000);
  assert.equal(parseProcStat(''), 0);
});

test('stats: /proc/<pid>/net/dev without lo, Docker field names', () => {
  const text = [
    'Inter-|   Receive                                                |  Transmit',
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
    '    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0',
    '  eth0:    1234      10    1    2    0     0          0         0      567       5    3    4    0     0       0          0',
  ].join('\n');
  assert.deepEqual(parseNetDev(text), {
    eth0: { rx_bytes: 1234, rx_packets: 10, rx_errors: 1, rx_dropped: 2, tx_bytes: 567, tx_packets: 5, tx_errors: 3, tx_dropped: 4 },
  });
});

test('stats: cgroup v1 figures in Docker sections; unlimited memory shows the machine memory', () => {
  const s = toDockerSections(
    {
      memory: { usage: 4096, limit: null, maxUsage: 8192, failcnt: 2, stat: { total_inactive_file: 1024 } },
      pids: { current: 3, limit: null },
      cpu: { usageNanos: 500, userNanos: 300, systemNanos: 200, periods: 4, throttledPeriods: 1, throttledNanos: 9, perCpuNanos: [200, 300] },
      blkio: { serviceBytes: [{ major: 8, minor: 0, op: 'Read', value: 10 }], serviced: [] },
    },
    1_000_000,
    2,
    1 << 30,
    1,
  );
  assert.deepEqual(s.cpu, {
    cpu_usage: { total_usage: 500, percpu_usage: [200, 300], usage_in_kernelmode: 200, usage_in_usermode: 300 },
    throttling_data: { periods: 4, throttled_periods: 1, throttled_time: 9 },
    system_cpu_usage: 1_000_000,
    online_cpus: 2,
  });
  assert.deepEqual(s.body.memory_stats, { usage: 4096, max_usage: 8192, stats: { total_inactive_file: 1024 }, failcnt: 2, limit: 1 << 30 });
  assert.deepEqual(s.body.pids_stats, { current: 3 });
  assert.deepEqual(s.body.blkio_stats.io_service_bytes_recursive, [{ major: 8, minor: 0, op: 'Read', value: 10 }]);
  assert.deepEqual(s.body.blkio_stats.io_serviced_recursive, [], 'v1 lists are there, empty');
  assert.deepEqual(s.body.blkio_stats.sectors_recursive, []);
});

test('stats: cgroup v2 has no max_usage/failcnt/percpu; a limit is kept as is', () => {
  const s = toDockerSections({ memory: { usage: 10, limit: 64 << 20, stat: { inactive_file: 1 } }, pids: { current: 1, limit: 8 }, cpu: { usageNanos: 7 } }, 5, 4, 1 << 30, 2);
  assert.deepEqual(s.body.memory_stats, { usage: 10, stats: { inactive_file: 1 }, limit: 64 << 20 });
  assert.deepEqual(s.body.pids_stats, { current: 1, limit: 8 });
  assert.equal(s.cpu.cpu_usage.percpu_usage, undefined);
  assert.equal(s.body.blkio_stats.io_service_bytes_recursive, null, 'no io figures read: null, as Docker');
});
