/**
 * The berth CLI end to end, as a user drives it: the same checks against any daemon that
 * speaks the Engine API (berthd, or the reference dockerd when one runs here).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { daemonReachable, runBerth, runBerthInPty, uniqueName } from './support.js';

export function defineE2E(host: string, label: string, image = 'busybox'): void {
  const reachable = daemonReachable(host);
  describe(`berth e2e against ${label}`, async () => {
    const ok = await reachable;
    const skip = ok ? false : `${host} is not reachable (no daemon here)`;
    const b = (args: string[], input?: string) => runBerth(args, { host, input });
    const created: string[] = [];
    after(async () => {
      if (ok && created.length) await b(['rm', '-f', ...created]);
    });

    test('run --rm splits stdout and stderr and returns the exit code', { skip }, async () => {
      const r = await b(['run', '--rm', image, 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      assert.equal(r.code, 3);
    });

    test('run -i pipes stdin and half-closes on EOF', { skip }, async () => {
      const r = await b(['run', '--rm', '-i', image, 'sh', '-c', 'tr a-z A-Z'], 'hello stdin\n');
      assert.equal(r.stdout, 'HELLO STDIN\n');
      assert.equal(r.code, 0);
    });

    test('run -d prints the full id; ps, inspect, logs, exec, stop, rm', { skip }, async () => {
      const name = uniqueName('d');
      created.push(name);
      const r = await b(['run', '-d', '--name', name, '-l', 'suite=berth', image, 'sh', '-c', 'echo one; echo two; sleep 60']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
      const id = r.stdout.trim();

      const ps = await b(['ps', '--filter', `name=${name}`, '--format', '{{.Names}}']);
      assert.equal(ps.stdout, `${name}\n`);
      const table = await b(['ps', '--filter', `id=${id}`]);
      const [header, row] = table.stdout.split('\n');
      assert.match(header!, /^CONTAINER ID   IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
      assert.ok(row!.startsWith(id.slice(0, 12)), row);
      assert.match(row!, /"sh -c 'echo one; ec…"/);
      assert.match(row!, /Up /);

      const st = await b(['inspect', '-f', '{{.State.Status}} {{.Config.Labels.suite}}', name]);
      assert.equal(st.stdout, 'running berth\n');
      const arr = await b(['inspect', name]);
      assert.ok(arr.stdout.startsWith('[\n    {\n        "Id": '), arr.stdout.slice(0, 40));

      await new Promise((r2) => setTimeout(r2, 300));
      const logs = await b(['logs', '--tail', '1', name]);
      assert.equal(logs.stdout, 'two\n');

      const ex = await b(['exec', name, 'sh', '-c', 'echo in-exec; echo e >&2; exit 5']);
      assert.equal(ex.stdout, 'in-exec\n');
      assert.equal(ex.stderr, 'e\n');
      assert.equal(ex.code, 5);

      const exi = await b(['exec', '-i', name, 'cat'], 'piped\n');
      assert.equal(exi.stdout, 'piped\n');

      const stop = await b(['stop', '-t', '1', name]);
      assert.equal(stop.stdout, `${name}\n`);
      const exited = await b(['ps', '-a', '--filter', `name=${name}`, '--format', '{{.State}} {{.Status}}']);
      assert.match(exited.stdout, /^exited Exited \(\d+\) /);
      const rm = await b(['rm', name]);
      assert.equal(rm.code, 0);
      created.pop();
    });

    test('create + start -a gives the exit code; wait prints it', { skip }, async () => {
      const name = uniqueName('c');
      created.push(name);
      assert.equal((await b(['create', '--name', name, image, 'sh', '-c', 'echo hi; exit 7'])).code, 0);
      const s = await b(['start', '-a', name]);
      assert.equal(s.stdout, 'hi\n');
      assert.equal(s.code, 7);
      const w = await b(['wait', name]);
      assert.equal(w.stdout, '7\n');
    });

    test('errors: unknown container (1), start failure (127), unknown flag (125)', { skip }, async () => {
      const rm = await b(['rm', uniqueName('nope')]);
      assert.equal(rm.code, 1);
      assert.match(rm.stderr, /^Error response from daemon: No such container: /);
      const r = await b(['run', '--rm', image, 'berth-no-such-binary']);
      assert.equal(r.code, 127);
      assert.match(r.stderr, /^berth: Error response from daemon: .*\n\nRun 'berth run --help' for more information\n$/s);
      const f = await b(['run', '--no-such-flag', image]);
      assert.equal(f.code, 125);
      assert.match(f.stderr, /unknown flag: --no-such-flag/);
    });

    test('rename: the container is looked up first, then the name (dockerd\'s order and words)', { skip }, async () => {
      const [a, bName] = [uniqueName('rn-a'), uniqueName('rn-b')];
      for (const n of [a, bName]) {
        created.push(n);
        assert.equal((await b(['create', '--name', n, image, 'true'])).code, 0);
      }
      const missing = uniqueName('rn-none');
      const cases: Array<[string, string, RegExp]> = [
        [missing, 'x!y', new RegExp(`^Error response from daemon: No such container: ${missing}\nError: failed to rename container named ${missing}\n$`)],
        [a, 'x!y', /^Error response from daemon: Error when allocating new name: Invalid container name \(\/x!y\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed\n/],
        [a, bName, new RegExp(`^Error response from daemon: Error when allocating new name: Conflict\\. The container name "/${bName}" is already in use by container "[0-9a-f]{64}"`)],
        [a, a, /^Error response from daemon: Renaming a container with the same name as its current name\n/],
        [a, ' ', /^Error: Neither old nor new names may be empty\n$/],
      ];
      for (const [from, to, want] of cases) {
        const r = await b(['rename', from, to]);
        assert.equal(r.code, 1, `rename ${from} ${to}`);
        assert.match(r.stderr, want, `rename ${from} ${to}`);
      }
      const c = uniqueName('rn-c');
      created.push(c);
      assert.equal((await b(['rename', a, `/${c}`])).code, 0);
      assert.equal((await b(['inspect', '-f', '{{.Name}}', c])).stdout, `/${c}\n`);
    });

    test('run -it under a pty echoes input and detaches with ctrl-p ctrl-q', { skip: skip || (process.env.BERTH_E2E_NO_PTY ? 'BERTH_E2E_NO_PTY set' : false) }, async () => {
      const name = uniqueName('it');
      created.push(name);
      const r = await runBerthInPty(
        ['run', '-it', '--name', name, image, 'sh'],
        [
          { write: 'echo hello-$((40+2))\r', waitMs: 1500 },
          { write: '\x10\x11', waitMs: 1000 },
        ],
        { host },
      );
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /hello-42/);
      const st = await b(['inspect', '-f', '{{.State.Running}}', name]);
      assert.equal(st.stdout, 'true\n', 'the container still runs after detaching');
    });
  });
}

