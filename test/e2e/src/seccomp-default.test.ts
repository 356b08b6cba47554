/**
 * The default seccomp profile in a real container, as Docker's behaves: a container without
 * CAP_SYS_ADMIN cannot make a user namespace (and so cannot mount in one) or any other; with
 * --cap-add SYS_ADMIN, or with seccomp=unconfined, it can; fork still works.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const berth = berthCli(() => daemon.host, { timeoutMs: 30_000 }).run;
const RUN = ['run', '--rm', '--network', 'none'];
const probe = 'unshare -U -r id -u; echo "userns=$?"; unshare -m true; echo "mountns=$?"; (true) & wait; echo "fork=$?"';

async function sh(flags: string[]): Promise<{ out: string; err: string }> {
  const r = await berth([...RUN, ...flags, 'busybox', 'sh', '-c', probe]);
  assert.equal(r.code, 0, `berth run ${flags.join(' ')}: ${r.code} ${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

describe('the default seccomp profile confines namespaces like Docker', { timeout: 120_000 }, () => {
  before(async () => {
    daemon = await startDaemon();
    const r = await berth(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await daemon.cleanup();
  });

  test('default capabilities: no user namespace, no mount namespace; fork works', async () => {
    const { out, err } = await sh([]);
    assert.match(out, /userns=1/);
    assert.match(out, /mountns=1/);
    assert.match(out, /fork=0/);
    assert.match(err, /unshare\(0x10000000\): Operation not permitted/);
  });

  test('--cap-add SYS_ADMIN gives them back', async () => {
    const { out } = await sh(['--cap-add', 'SYS_ADMIN']);
    assert.match(out, /^0\nuserns=0/m);
    assert.match(out, /mountns=0/);
  });

  test('--security-opt seccomp=unconfined lifts the profile (capabilities still decide)', async () => {
    const { out } = await sh(['--security-opt', 'seccomp=unconfined']);
    assert.match(out, /userns=0/);
    assert.match(out, /mountns=1/, 'unshare -m still needs CAP_SYS_ADMIN');
  });
});
