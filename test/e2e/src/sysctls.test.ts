/**
 * Sysctls as Docker sets them: a container with a network namespace of its own (bridge or none)
 * lets any user bind ports below 1024 and ping; --sysctl net.* works on a bridge network (the
 * container joins the sandbox berthd made); the host's values are never touched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const read = '/proc/sys/net/ipv4/ip_unprivileged_port_start';

describe('sysctls in containers', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    await cli.ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
  });
  after(async () => {
    await daemon.cleanup();
  });

  test('bridge and none: ports below 1024 and ping for every user: uid 65534 listens on port 80', async () => {
    for (const net of ['bridge', 'none']) {
      const out = await cli.ok(['run', '--rm', '--network', net, 'busybox', 'sh', '-c', `cat ${read} /proc/sys/net/ipv4/ping_group_range`]);
      assert.equal(out, '0\n0\t2147483647\n', net);
    }
    // LISTEN (0A) on local port 80 (0050), by uid 65534 (busybox nc listens on [::])
    const bound = await cli.ok(['run', '--rm', '--user', '65534', 'busybox', 'sh', '-c', 'nc -l -p 80 & sleep 0.5; cat /proc/net/tcp /proc/net/tcp6 | grep -c ":0050 0*:0000 0A .* 65534 "; kill %1']);
    assert.equal(bound.trim(), '1', bound);
  });

  test('--sysctl net.* on the bridge network reaches the container; the host keeps its own', async () => {
    const host = readFileSync(read, 'utf8');
    const out = await cli.ok(['run', '--rm', '--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'net.ipv4.ip_unprivileged_port_start=2000', 'busybox', 'sh', '-c', `cat /proc/sys/net/ipv4/ip_forward ${read}`]);
    assert.equal(out, '1\n2000\n');
    assert.equal((await cli.ok(['run', '--rm', '--network', 'host', 'busybox', 'cat', read])), host, '--network host: untouched');
    assert.equal(readFileSync(read, 'utf8'), host);
  });

  test('a sysctl that is not namespaced is refused before anything runs', async () => {
    const r = await cli.run(['run', '--rm', '--sysctl', 'kernel.panic=1', 'busybox', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /kernel\.panic.*is not namespaced/);
  });
});
