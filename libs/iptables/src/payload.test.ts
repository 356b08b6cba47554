import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOps, buildPayload, parseRules, type TableState } from './payload.js';
import type { Op, Table } from './types.js';
import { FakeIptables } from './testing.js';

const natSave = [
  '-P PREROUTING ACCEPT',
  '-P OUTPUT ACCEPT',
  '-P POSTROUTING ACCEPT',
  '-N BERTH',
  '-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH',
  '-A POSTROUTING -s 172.18.0.0/16 ! -o br-x -j MASQUERADE',
];

test('parseRules keeps chains (built-in ones too) and rule text', () => {
  const st = parseRules(natSave);
  assert.deepEqual([...st.chains], ['PREROUTING', 'OUTPUT', 'POSTROUTING', 'BERTH']);
  assert.deepEqual(st.rules.get('POSTROUTING'), ['-s 172.18.0.0/16 ! -o br-x -j MASQUERADE']);
  assert.deepEqual(st.rules.get('BERTH'), []);
});

test('buildPayload: chains only when missing, rules only when absent, deletes only when present', async () => {
  const state = new Map<Table, TableState>([['nat', parseRules(natSave)]]);
  const ops: Op[] = [
    { op: 'ensureChain', table: 'nat', chain: 'BERTH' },
    { op: 'append', table: 'nat', chain: 'PREROUTING', args: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'BERTH'] },
    { op: 'insert', table: 'nat', chain: 'POSTROUTING', args: ['-s', '172.19.0.0/16', '!', '-o', 'br-y', '-j', 'MASQUERADE'] },
    { op: 'delete', table: 'nat', chain: 'POSTROUTING', args: ['-s', '172.18.0.0/16', '!', '-o', 'br-x', '-j', 'MASQUERADE'] },
    { op: 'delete', table: 'nat', chain: 'POSTROUTING', args: ['-s', '172.18.0.0/16', '!', '-o', 'br-x', '-j', 'MASQUERADE'] },
    { op: 'ensureChain', table: 'filter', chain: 'BERTH-USER' },
    { op: 'append', table: 'filter', chain: 'BERTH-USER', args: ['-j', 'RETURN'] },
  ];
  const payload = await buildPayload(ops, state);
  assert.equal(
    payload,
    [
      '*nat',
      '-I POSTROUTING -s 172.19.0.0/16 ! -o br-y -j MASQUERADE',
      '-D POSTROUTING -s 172.18.0.0/16 ! -o br-x -j MASQUERADE',
      'COMMIT',
      '*filter',
      '-N BERTH-USER',
      '-A BERTH-USER -j RETURN',
      'COMMIT',
      '',
    ].join('\n'),
  );
});

test('buildPayload: nothing to do gives an empty payload', async () => {
  const state = new Map<Table, TableState>([['nat', parseRules(natSave)]]);
  const payload = await buildPayload([{ op: 'ensureChain', table: 'nat', chain: 'BERTH' }, { op: 'delete', table: 'nat', chain: 'BERTH', args: ['-j', 'RETURN'] }], state);
  assert.equal(payload, '');
});

test('buildPayload: move keeps a jump at the top (delete + insert) and leaves it when already there', async () => {
  const filter = parseRules(['-P FORWARD DROP', '-N U', '-A FORWARD -o x -j ACCEPT', '-A FORWARD -j U']);
  const moved = await buildPayload([{ op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', 'U'], move: true }], new Map([['filter', filter]]));
  assert.equal(moved, '*filter\n-D FORWARD -j U\n-I FORWARD -j U\nCOMMIT\n');
  const top = parseRules(['-P FORWARD DROP', '-N U', '-A FORWARD -j U', '-A FORWARD -o x -j ACCEPT']);
  assert.equal(await buildPayload([{ op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', 'U'], move: true }], new Map([['filter', top]])), '');
});

test('buildPayload asks -C only for text it does not find, and trusts it', async () => {
  const asked: string[] = [];
  const state = new Map<Table, TableState>([['nat', parseRules(natSave)]]);
  const payload = await buildPayload(
    [
      { op: 'delete', table: 'nat', chain: 'POSTROUTING', args: ['-s', '172.18.0.0/16', '!', '-o', 'br-x', '-j', 'MASQUERADE'] },
      { op: 'delete', table: 'nat', chain: 'BERTH', args: ['-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.0.0.2:80'] },
      { op: 'delete', table: 'nat', chain: 'GONE', args: ['-j', 'RETURN'] },
    ],
    state,
    async (_t, c, a) => {
      asked.push(`${c} ${a.join(' ')}`);
      return true;
    },
  );
  assert.deepEqual(asked, ['BERTH -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80']);
  assert.equal(payload, '*nat\n-D POSTROUTING -s 172.18.0.0/16 ! -o br-x -j MASQUERADE\n-D BERTH -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n');
});

test('deleteChain flushes then deletes; absent chain is no-op', async () => {
  const state = new Map<Table, TableState>([['nat', parseRules(natSave)]]);
  assert.equal(await buildPayload([{ op: 'deleteChain', table: 'nat', chain: 'BERTH' }, { op: 'deleteChain', table: 'nat', chain: 'NOPE' }], state), '*nat\n-F BERTH\n-X BERTH\nCOMMIT\n');
});

test('FakeIptables applies payloads atomically and fails like iptables-restore', async () => {
  const ipt = new FakeIptables();
  await ipt.apply([
    { op: 'ensureChain', table: 'filter', chain: 'T' },
    { op: 'append', table: 'filter', chain: 'T', args: ['-j', 'RETURN'] },
    { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', 'T'] },
  ]);
  assert.deepEqual(ipt.dump('filter'), ['-P INPUT ACCEPT', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT', '-N T', '-A FORWARD -j T', '-A T -j RETURN']);
  await assert.rejects(ipt.restore('*filter\n-A FORWARD -j DROP\n-D T -j DROP\nCOMMIT\n'), /line 3 failed: Bad rule/);
  assert.deepEqual(ipt.rules('filter', 'FORWARD'), ['-j T']); // nothing of the failed payload
  await assert.rejects(ipt.restore('*filter\n-X T\nCOMMIT\n'), /Directory not empty/);
  // a second apply of the same ops changes nothing
  assert.equal(await ipt.apply([{ op: 'ensureChain', table: 'filter', chain: 'T' }, { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-j', 'T'] }]), '');
  // deleting a rule that is already gone is not an error
  assert.equal(await ipt.apply([{ op: 'delete', table: 'filter', chain: 'FORWARD', args: ['-o', 'gone', '-j', 'ACCEPT'] }]), '');
});

test('optimistic apply: one restore without reads when the rules are as recorded, read-then-apply when not', async () => {
  const ipt = new FakeIptables();
  await ipt.apply([{ op: 'ensureChain', table: 'nat', chain: 'B' }]);
  const add = [{ op: 'append', table: 'nat', chain: 'B', args: ['-p', 'tcp', '-m', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.0.0.2:80'] }] as const;
  ipt.calls.length = 0;
  await ipt.apply(add, { optimistic: true });
  assert.deepEqual(ipt.calls.map((c) => c.method), ['restore']);
  const del = [
    { op: 'delete', table: 'nat', chain: 'B', args: add[0].args },
    { op: 'delete', table: 'nat', chain: 'B', args: ['-j', 'RETURN'] }, // not there
  ] as const;
  ipt.calls.length = 0;
  const payload = await ipt.apply(del, { optimistic: true });
  assert.deepEqual(ipt.calls.map((c) => c.method), ['restore', 'list', 'restore']);
  assert.equal(payload, '*nat\n-D B -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n');
  assert.deepEqual(ipt.rules('nat', 'B'), []);
  // ops that need the state (chains, moves) always read
  ipt.calls.length = 0;
  await ipt.apply([{ op: 'ensureChain', table: 'nat', chain: 'B' }], { optimistic: true });
  assert.deepEqual(ipt.calls.map((c) => c.method), ['list', 'restore']); // restore of '' is a no-op
});

test('policy op: emitted only when the policy differs', async () => {
  const ipt = new FakeIptables();
  assert.equal(await ipt.apply([{ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'ACCEPT' }]), '');
  assert.equal(await ipt.apply([{ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' }]), '*filter\n-P FORWARD DROP\nCOMMIT\n');
  assert.ok(ipt.dump('filter').includes('-P FORWARD DROP'));
});

test('apply plans again from a fresh read when another program shortened a chain between the read and the restore', async () => {
  const ipt = new FakeIptables();
  await ipt.restore('*filter\n-A FORWARD -s 10.0.0.1/32 -j ACCEPT\n-A FORWARD -s 10.0.0.2/32 -j ACCEPT\nCOMMIT\n');
  let restores = 0;
  // The other program (another daemon's teardown) deletes both rules right before our first restore.
  const racing = {
    list: (t: Table) => ipt.list(t),
    exists: (t: Table, c: string, a: readonly string[]) => ipt.exists(t, c, a),
    async restore(p: string) {
      if (restores++ === 0) await ipt.restore('*filter\n-D FORWARD -s 10.0.0.1/32 -j ACCEPT\n-D FORWARD -s 10.0.0.2/32 -j ACCEPT\nCOMMIT\n');
      return ipt.restore(p);
    },
  };
  const op: Op = { op: 'insert', table: 'filter', chain: 'FORWARD', args: ['-s', '10.9.9.9/32', '-j', 'DROP'], position: 2 };
  const payload = await applyOps(racing, [op]);
  assert.equal(restores, 2, 'the first plan (-I FORWARD 2) was refused, the second made from a fresh read');
  assert.equal(payload, '*filter\n-I FORWARD -s 10.9.9.9/32 -j DROP\nCOMMIT\n');
  assert.deepEqual(ipt.rules('filter', 'FORWARD'), ['-s 10.9.9.9/32 -j DROP']);
  // A restore refused every time is the error, after a bounded number of plans.
  let tries = 0;
  const broken = { ...racing, restore: async () => { tries++; throw new Error('iptables-restore: refused'); } };
  await assert.rejects(applyOps(broken, [op]), /refused/);
  assert.equal(tries, 3);
});
