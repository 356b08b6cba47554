import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createIptables, type Op } from '../../src/index.js';

// Every test runs in a network namespace made here; the host's rules are never read or written.
const ns = `bti${process.pid % 10000}${Math.random().toString(16).slice(2, 6)}`;
const netnsPath = `/run/netns/${ns}`;

before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
});
after(() => {
  execFileSync('ip', ['netns', 'del', ns]);
  // other sessions may program the host's tables meanwhile: nothing of ours may be there
  const host = execFileSync('iptables', ['-S']).toString() + execFileSync('iptables', ['-t', 'nat', '-S']).toString();
  assert.deepEqual(host.split('\n').filter((l) => /\bTST/.test(l) || l.includes('10.9.0.2')), [], 'no rule of this test in the host tables');
});

test('apply inside a netns: one payload, idempotent, -S text matches what was written (no -C needed)', async () => {
  const ipt = createIptables({ netnsPath });
  let checks = 0;
  const exists = ipt.exists.bind(ipt);
  ipt.exists = async (...a) => {
    checks++;
    return exists(...a);
  };
  const ops: Op[] = [
    { op: 'ensureChain', table: 'nat', chain: 'TST' },
    { op: 'append', table: 'nat', chain: 'PREROUTING', args: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'TST'] },
    { op: 'append', table: 'nat', chain: 'TST', args: ['-d', '127.0.0.1/32', '-p', 'udp', '-m', 'udp', '--dport', '41000:41999', '-j', 'DNAT', '--to-destination', '10.9.0.2:41000-41999'] },
    { op: 'ensureChain', table: 'filter', chain: 'TST-USER' },
    { op: 'append', table: 'filter', chain: 'TST-USER', args: ['-j', 'RETURN'] },
    { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', 'TST-USER'], move: true },
  ];
  const first = await ipt.apply(ops);
  assert.match(first, /^\*nat\n-N TST\n/);
  assert.deepEqual(await ipt.list('filter', 'TST-USER'), ['-N TST-USER', '-A TST-USER -j RETURN']);
  assert.equal(await ipt.apply(ops), '', 'second apply changes nothing');
  assert.equal(checks, 0, 'canonical text found by -S, no -C');
  assert.equal(await ipt.exists('nat', 'TST', ['-d', '127.0.0.1/32', '-p', 'udp', '--dport', '41000:41999', '-j', 'DNAT', '--to-destination', '10.9.0.2:41000-41999']), true);
  assert.equal(await ipt.exists('nat', 'NOPE', ['-j', 'RETURN']), false);
});

test('a rule written in non-canonical form is found with -C, so a delete of it works and a repeat is a no-op', async () => {
  const ipt = createIptables({ netnsPath });
  await ipt.restore('*filter\n-A FORWARD -p tcp --dport 99 -j ACCEPT\nCOMMIT\n');
  const del: Op[] = [{ op: 'delete', table: 'filter', chain: 'FORWARD', args: ['-p', 'tcp', '--dport', '99', '-j', 'ACCEPT'] }];
  assert.notEqual(await ipt.apply(del), '');
  assert.equal(await ipt.apply(del), '');
  assert.deepEqual((await ipt.list('filter', 'FORWARD')).filter((l) => l.includes('99')), []);
});

test('a refused payload names the line and changes nothing', async () => {
  const ipt = createIptables({ netnsPath });
  const before = await ipt.list('filter');
  await assert.rejects(ipt.restore('*filter\n-A FORWARD -j ACCEPT\n-A FORWARD -j NO-SUCH-CHAIN\nCOMMIT\n'), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'BERTH_IPTABLES');
    assert.match(e.message, /NO-SUCH-CHAIN.*payload line 3: -A FORWARD -j NO-SUCH-CHAIN/);
    return true;
  });
  assert.deepEqual(await ipt.list('filter'), before);
});

test('chain helpers: ensure, flush, delete', async () => {
  const ipt = createIptables({ netnsPath });
  await ipt.ensureChain('filter', 'TST2');
  await ipt.restore('*filter\n-A TST2 -j RETURN\nCOMMIT\n');
  await ipt.ensureChain('filter', 'TST2'); // does not flush
  assert.deepEqual(await ipt.list('filter', 'TST2'), ['-N TST2', '-A TST2 -j RETURN']);
  await ipt.flushChain('filter', 'TST2');
  assert.deepEqual(await ipt.list('filter', 'TST2'), ['-N TST2']);
  await ipt.deleteChain('filter', 'TST2');
  await ipt.deleteChain('filter', 'TST2');
  assert.ok(!(await ipt.list('filter')).includes('-N TST2'));
});
