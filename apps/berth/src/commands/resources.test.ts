import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from '../cli/args.js';
import { buildCreateBody, commands as runCommands, parseCpus, parseDevice } from './run.js';
import { cpuPercent, memUsage, statsRow, type StatsJson } from './stats.js';
import { buildUpdateBody, commands as updateCommands } from './update.js';

test('run resource flags: devices, blkio devices, kernel memory, --cpus sign left to the daemon', () => {
  const p = parseArgs(runCommands.run!.spec, [
    '--device', '/dev/zero:/dev/z:r', '--device', '/dev/null', '--device-cgroup-rule', 'c 1:3 rwm', '--blkio-weight', '300',
    '--device-read-bps', '/dev/sda:1mb', '--device-write-iops', '/dev/sda:100', '--kernel-memory', '8m', '--cpus', '-1', 'busybox',
  ]);
  const h = buildCreateBody(p, true).HostConfig! as unknown as Record<string, unknown>;
  assert.deepEqual(h.Devices, [
    { PathOnHost: '/dev/zero', PathInContainer: '/dev/z', CgroupPermissions: 'r' },
    { PathOnHost: '/dev/null', PathInContainer: '/dev/null', CgroupPermissions: 'rwm' },
  ]);
  assert.deepEqual(h.DeviceCgroupRules, ['c 1:3 rwm']);
  assert.equal(h.BlkioWeight, 300);
  assert.deepEqual(h.BlkioDeviceReadBps, [{ Path: '/dev/sda', Rate: 1 << 20 }]);
  assert.deepEqual(h.BlkioDeviceWriteIOps, [{ Path: '/dev/sda', Rate: 100 }]);
  assert.equal(h.KernelMemory, 8 << 20);
  assert.equal(h.NanoCpus, -1e9);
  assert.equal(parseCpus('0.5'), 5e8);
  assert.throws(() => parseCpus('0.0000000001'), /value is too precise/);
  assert.throws(() => parseCpus('abc'), /failed to parse abc as a rational number/);
  assert.deepEqual(parseDevice('/dev/sda:rw'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'rw' });
  assert.throws(() => parseDevice('/dev/a:/dev/b:rwx'), /invalid device mode: rwx/);
});

test('update flags: only those given go in the body', () => {
  const spec = updateCommands.update!.spec;
  assert.deepEqual(buildUpdateBody(parseArgs(spec, ['-m', '64m', '--pids-limit', '-1', '--restart', 'on-failure:2', '--cpus', '1.5', 'c1'])), {
    Memory: 64 << 20, PidsLimit: -1, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 }, NanoCpus: 1.5e9,
  });
  assert.deepEqual(buildUpdateBody(parseArgs(spec, ['--memory-swap', '-1', '--blkio-weight', '300', 'c1'])), { MemorySwap: -1, BlkioWeight: 300 });
  assert.throws(() => buildUpdateBody(parseArgs(spec, ['c1'])), /you must provide one or more flags when using this command/);
  assert.throws(() => buildUpdateBody(parseArgs(spec, ['--restart', 'always:3', 'c1'])), /maximum retry count can only be used with 'on-failure'/);
});

test('stats columns: docker CLI formulas (CPU % from deltas, memory less inactive file)', () => {
  const s: StatsJson = {
    read: '2026-01-01T00:00:01Z',
    id: 'f'.repeat(64),
    name: '/web',
    cpu_stats: { cpu_usage: { total_usage: 1_500_000_000 }, system_cpu_usage: 4_000_000_000, online_cpus: 2 },
    precpu_stats: { cpu_usage: { total_usage: 1_000_000_000 }, system_cpu_usage: 2_000_000_000 },
    memory_stats: { usage: 10 << 20, limit: 64 << 20, stats: { total_inactive_file: 2 << 20 } },
    pids_stats: { current: 3 },
    blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 1000 }, { op: 'Write', value: 2000 }, { op: 'Total', value: 3000 }] },
    networks: { eth0: { rx_bytes: 1500, tx_bytes: 500 }, eth1: { rx_bytes: 500, tx_bytes: 0 } },
  };
  assert.equal(cpuPercent(s), 50);
  assert.equal(memUsage(s), 8 << 20);
  assert.deepEqual(statsRow(s, 'web', false), {
    Container: 'web', ID: 'f'.repeat(12), Name: 'web', CPUPerc: '50.00%', MemUsage: '8MiB / 64MiB', MemPerc: '12.50%',
    NetIO: '2kB / 500B', BlockIO: '1kB / 2kB', PIDs: '3',
  });
  // v2 names the cache inactive_file; no delta yet gives 0 %.
  assert.equal(memUsage({ memory_stats: { usage: 100, stats: { inactive_file: 40 } } }), 60);
  assert.equal(cpuPercent({ cpu_stats: { cpu_usage: { total_usage: 5 }, system_cpu_usage: 5 } }), 0);
});
