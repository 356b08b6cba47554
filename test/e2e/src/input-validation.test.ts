/**
 * Bad create input through the Engine API and the CLI, against a berthd on scratch roots: user
 * and group ids outside Docker's 0-2147483647 (given, or read from the image's passwd at start),
 * mounts over /, /proc and /sys, HostConfig ranges and conflicts, and a 50-way race for one
 * name. Each answer is a 400 (or 409) naming the field, and nothing is left behind. Where the
 * reference dockerd runs on this host (/run/docker-ref.sock), the rows it has a rule for are
 * compared with its answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthCli, busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

let daemon: Daemon;
const cli = berthCli(() => daemon.host, { timeoutMs: 30_000 });
const berth = cli.run;
const ok = cli.ok;

const REF_SOCK = '/run/docker-ref.sock';
const RANGE = 'uids and gids must be in range 0-2147483647';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function api(socket: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path: `/v1.41${path}`, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = data ? (JSON.parse(data) as Record<string, unknown>) : {};
        } catch {
          parsed = { raw: data };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const berthApi = (method: string, path: string, body?: unknown): Promise<Answer> => api(daemon.socket, method, path, body);
const create = (body: Record<string, unknown>, name?: string): Promise<Answer> =>
  berthApi('POST', `/containers/create${name ? `?name=${encodeURIComponent(name)}` : ''}`, { Image: 'busybox', Cmd: ['true'], ...body });

/** Creates on the reference dockerd, removing what it made; undefined where it does not run. */
async function refCreate(body: Record<string, unknown>): Promise<Answer | undefined> {
  if (!existsSync(REF_SOCK)) return undefined;
  const a = await api(REF_SOCK, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], ...body }).catch(() => undefined);
  if (a?.status === 201) await api(REF_SOCK, 'DELETE', `/containers/${String(a.body.Id)}?force=1`);
  return a;
}

/** A 400 with this message (exact, or matching) and, when berthd sends one, this field. */
async function refused(body: Record<string, unknown>, message: string | RegExp): Promise<Answer> {
  const a = await create(body);
  if (a.status === 201) await berthApi('DELETE', `/containers/${String(a.body.Id)}?force=1`);
  assert.equal(a.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(a.body)}`);
  if (typeof message === 'string') assert.equal(a.body.message, message, JSON.stringify(body));
  else assert.match(String(a.body.message), message, JSON.stringify(body));
  return a;
}

async function accepted(body: Record<string, unknown>): Promise<void> {
  const a = await create(body);
  assert.equal(a.status, 201, `${JSON.stringify(body)}: ${JSON.stringify(a.body)}`);
  assert.equal((await berthApi('DELETE', `/containers/${String(a.body.Id)}`)).status, 204);
}

/**
 * What of the data root belongs to containers: records, layer records, layer directories. A
 * removed overlay2 layer is renamed to `.removing-*` and deleted in the background: wait (up to
 * 10 s) for those deletions, so that one never finished counts as a leak.
 */
async function inventory(): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const now = inventoryNow();
    if (!now.some((e) => e.includes('/.removing-'))) return now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return inventoryNow();
}

function inventoryNow(): string[] {
  const out: string[] = [];
  const ls = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);
  for (const e of ls(join(daemon.dataRoot, 'containers'))) out.push(`containers/${e}`);
  for (const driver of ls(join(daemon.dataRoot, 'image'))) for (const e of ls(join(daemon.dataRoot, 'image', driver, 'layerdb', 'mounts'))) out.push(`mounts/${e}`);
  for (const d of ls(daemon.dataRoot)) {
    if (['containers', 'image', 'network', 'fixtures', 'tmp', 'volumes', 'plugins', 'buildkit', 'runtimes', 'trust', 'swarm'].includes(d)) continue;
    for (const e of ls(join(daemon.dataRoot, d))) out.push(`${d}/${e}`);
  }
  return out.sort();
}

async function containerIds(): Promise<string[]> {
  return (await berth(['ps', '-aq', '--no-trunc'])).stdout.trim().split('\n').filter(Boolean);
}

describe('create input validation through the API and the CLI', { timeout: 180_000 }, () => {
  let scratch: string;
  before(async () => {
    daemon = await startDaemon({ network: false });
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    scratch = mkdtempSync(join(tmpdir(), `berth-input-validation-${process.pid}-`));
  });
  after(async () => {
    const ids = await containerIds().catch(() => []);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    await daemon.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('--user out of 0-2147483647 is refused at create: 400 naming User, no container, never root', async () => {
    const before = await containerIds();
    for (const user of ['4294967295', '4294967296', '4294967296:1', '0:4294967296', '99999999999999999999', '2147483648', '-1']) {
      await refused({ User: user }, RANGE);
      const r = await berth(['run', '--rm', '--user', user, 'busybox', 'id']);
      assert.equal(r.code, 125, `--user ${user}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /uids and gids must be in range 0-2147483647/);
      assert.doesNotMatch(r.stdout, /uid=/);
    }
    for (const g of ['4294967296', '2147483648', '-1']) {
      await refused({ HostConfig: { GroupAdd: [g] } }, RANGE);
      const r = await berth(['run', '--rm', '--group-add', g, 'busybox', 'id']);
      assert.equal(r.code, 125, r.stdout + r.stderr);
    }
    // The rule as the reference daemon words it (it refuses at start; berthd at create).
    const ref = existsSync(REF_SOCK) ? await api(REF_SOCK, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['id'], User: '4294967296' }).catch(() => undefined) : undefined;
    if (ref?.status === 201) {
      const id = String(ref.body.Id);
      const start = await api(REF_SOCK, 'POST', `/containers/${id}/start`);
      await api(REF_SOCK, 'DELETE', `/containers/${id}?force=1`);
      assert.equal(start.body.message, RANGE);
    }
    assert.deepEqual(await containerIds(), before);
  });

  test('exec --user out of range fails with 126 and Docker\'s words, never root', async () => {
    const id = (await ok(['run', '-d', 'busybox', 'sleep', '60'])).trim();
    try {
      for (const user of ['4294967296', '0:4294967296', '-1']) {
        const r = await berth(['exec', '-u', user, id, 'id']);
        assert.equal(r.code, 126, `exec -u ${user}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /uids and gids must be in range 0-2147483647/);
        assert.doesNotMatch(r.stdout, /uid=/);
      }
      assert.equal((await ok(['exec', '-u', '2147483647', id, 'id', '-u'])).trim(), '2147483647');
    } finally {
      await berth(['rm', '-f', id]);
    }
  });

  test('the largest ids run as themselves', async () => {
    const out = await ok(['run', '--rm', '--user', '2147483647:2147483647', '--group-add', '2147483647', 'busybox', 'sh', '-c', 'id -u; id -g; id -G; grep CapEff /proc/self/status']);
    const [u, g, groups, capEff] = out.trim().split('\n');
    assert.deepEqual([u, g, groups!.split(' ').includes('2147483647')], ['2147483647', '2147483647', true]);
    assert.match(capEff!, /CapEff:\s+0{16}/);
  });

  test('a uid out of range in the image\'s /etc/passwd fails the start: the error on the container, exit code 128, nothing runs', async () => {
    const pw = join(scratch, 'passwd');
    writeFileSync(pw, 'root:x:0:0:root:/root:/bin/sh\nevil:x:4294967296:0::/:/bin/sh\nbiggid:x:1000:4294967297::/:/bin/sh\n');
    for (const [user, what] of [['evil', /user evil in the container's \/etc\/passwd has id 4294967296: uids and gids must be in range 0-2147483647/], ['biggid', /user biggid's group .* has id 4294967297/]] as const) {
      const id = (await ok(['create', '--user', user, 'busybox', 'sh', '-c', 'id; touch /ran'])).trim();
      try {
        await ok(['cp', pw, `${id}:/etc/passwd`]);
        const start = await berthApi('POST', `/containers/${id}/start`);
        assert.equal(start.status, 400, JSON.stringify(start.body));
        assert.match(String(start.body.message), what);
        const state = (await berthApi('GET', `/containers/${id}/json`)).body.State as { Status: string; ExitCode: number; Error: string; Running: boolean };
        assert.equal(state.Running, false);
        assert.equal(state.ExitCode, 128);
        assert.match(state.Error, what);
        const logs = await berth(['logs', id]);
        assert.doesNotMatch(logs.stdout, /uid=/);
        const r = await berth(['start', '-a', id]);
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.stdout, /uid=0/);
      } finally {
        await berth(['rm', '-f', id]);
      }
    }
  });

  test('mounts onto /, /proc, /sys or inside /proc are refused at create, naming the field', async () => {
    const src = scratch;
    const bind = (spec: string, why: string): string => `invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: ${why}`;
    const rows: [Record<string, unknown>, string | RegExp, string][] = [
      [{ HostConfig: { Binds: [`${src}:/`] } }, bind(`${src}:/`, "destination can't be '/'"), 'HostConfig.Binds[0]'],
      [{ HostConfig: { Binds: [`${src}:/mnt`, `${src}:/proc`] } }, bind(`${src}:/proc`, "destination can't be '/proc': it would replace the container's procfs"), 'HostConfig.Binds[1]'],
      [{ HostConfig: { Binds: [`${src}:/sys:ro`] } }, bind(`${src}:/sys:ro`, "destination can't be '/sys': it would replace the container's sysfs"), 'HostConfig.Binds[0]'],
      [{ HostConfig: { Binds: [`${src}:/proc/sys`] } }, bind(`${src}:/proc/sys`, "'/proc/sys' cannot be mounted because it is inside /proc"), 'HostConfig.Binds[0]'],
      [{ HostConfig: { Binds: [`${src}:/proc/self/../kcore`] } }, /'\/proc\/kcore' cannot be mounted because it is inside \/proc/, 'HostConfig.Binds[0]'],
      [{ HostConfig: { Tmpfs: { '/': '' } } }, "invalid specification: destination can't be '/'", 'HostConfig.Tmpfs'],
      [{ HostConfig: { Tmpfs: { '/proc': '' } } }, /^invalid specification: destination can't be '\/proc'/, 'HostConfig.Tmpfs'],
      [{ HostConfig: { Tmpfs: { '/sys/': 'size=1m' } } }, /^invalid specification: destination can't be '\/sys'/, 'HostConfig.Tmpfs'],
      [{ HostConfig: { Mounts: [{ Type: 'bind', Source: src, Target: '/' }] } }, 'invalid mount config for type "bind": invalid specification: destination can\'t be \'/\'', 'HostConfig.Mounts[0]'],
      [{ HostConfig: { Mounts: [{ Type: 'tmpfs', Target: '/proc' }] } }, /^invalid mount config for type "tmpfs": invalid specification: destination can't be '\/proc'/, 'HostConfig.Mounts[0]'],
      [{ HostConfig: { Mounts: [{ Type: 'bind', Source: src, Target: '/proc/acpi' }] } }, /inside \/proc/, 'HostConfig.Mounts[0]'],
    ];
    const before = await inventory();
    for (const [body, message] of rows) await refused(body, message);
    // Docker's own rule for '/', compared where the reference daemon runs.
    for (const [body, message] of [rows[0]!, rows[5]!, rows[8]!]) {
      const ref = await refCreate(body);
      if (ref) assert.equal(ref.body.message, message, JSON.stringify(body));
    }
    for (const v of [`${src}:/proc`, `${src}:/sys`, `${src}:/proc/interrupts`]) {
      const r = await berth(['run', '--rm', '-v', v, 'busybox', 'true']);
      assert.equal(r.code, 125, `${v}: ${r.stderr}`);
      assert.match(r.stderr, /invalid mount config for type "bind"/);
    }
    const t = await berth(['run', '--rm', '--tmpfs', '/proc', 'busybox', 'true']);
    assert.equal(t.code, 125, t.stderr);
    assert.deepEqual(await inventory(), before);
    // runc's allow-list and /sys below its root stay possible.
    writeFileSync(join(src, 'fake-uptime'), 'evil 1\n');
    const out = await ok(['run', '--rm', '-v', `${src}/fake-uptime:/proc/uptime:ro`, '--tmpfs', '/sys/kernel/mm', 'busybox', 'sh', '-c', 'grep -c evil /proc/uptime; grep -c " /sys/kernel/mm tmpfs " /proc/mounts']);
    assert.deepEqual(out.trim().split('\n'), ['1', '1']);
  });

  test('HostConfig.Mounts (--mount) are mounted: a read-only bind and a sized tmpfs; a badly named volume is refused', async () => {
    writeFileSync(join(scratch, 'marker'), 'from-the-host\n');
    const a = await create({
      Cmd: ['sh', '-c', 'cat /data/marker; grep -E " /(data|scratch) " /proc/mounts; touch /data/x 2>/dev/null && echo wrote || echo refused'],
      HostConfig: { Mounts: [{ Type: 'bind', Source: scratch, Target: '/data', ReadOnly: true }, { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 2 * 1024 * 1024, Mode: 0o700 } }] },
    });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    const id = String(a.body.Id);
    try {
      const out = await ok(['start', '-a', id]);
      const lines = out.trim().split('\n');
      assert.equal(lines[0], 'from-the-host');
      assert.ok(lines.some((l) => / \/data \S+ ro[,\s]/.test(l)), out);
      assert.ok(lines.some((l) => / \/scratch tmpfs \S*size=2048k/.test(l) && /mode=700/.test(l)), out);
      assert.equal(lines.at(-1), 'refused');
      // inspect lists them as Docker does
      const info = JSON.parse(await ok(['inspect', id])) as { Mounts: unknown[] }[];
      assert.deepEqual(info[0]!.Mounts, [
        { Type: 'bind', Source: scratch, Destination: '/data', Mode: '', RW: false, Propagation: 'rprivate' },
        { Type: 'tmpfs', Source: '', Destination: '/scratch', Mode: '', RW: true, Propagation: '' },
      ]);
    } finally {
      await berthApi('DELETE', `/containers/${id}?force=1`);
    }
    // Volumes are supported (test/e2e/src/volumes.test.ts): a bad name is the local driver's 400.
    await refused({ HostConfig: { Mounts: [{ Type: 'volume', Source: 'v', Target: '/v' }] } }, 'create v: volume name is too short, names should be at least two alphanumeric characters');
    await refused({ HostConfig: { Mounts: [{ Type: 'bind', Source: join(scratch, 'missing'), Target: '/v' }] } }, `invalid mount config for type "bind": bind source path does not exist: ${join(scratch, 'missing')}`);
    // Relative destinations, in dockerd's words for each kind.
    await refused({ HostConfig: { Binds: ['/tmp:relative'] } }, `invalid volume specification: '/tmp:relative': invalid mount config for type "bind": invalid mount path: 'relative' mount path must be absolute`);
    await refused({ HostConfig: { Binds: ['vol:relative'] } }, `invalid volume specification: 'vol:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute`);
    await refused({ HostConfig: { Tmpfs: { relative: '' } } }, `invalid mount path: 'relative' mount path must be absolute`);
  });

  test('HostConfig ranges and conflicts: Docker\'s 400s and words; the bounds themselves pass', async () => {
    const rows: [Record<string, unknown>, string, boolean][] = [
      [{ OomScoreAdj: 1001 }, 'Invalid value 1001, range for oom score adj is [-1000, 1000]', true],
      [{ OomScoreAdj: -1001 }, 'Invalid value -1001, range for oom score adj is [-1000, 1000]', true],
      [{ MemorySwappiness: 101 }, 'Invalid value: 101, valid memory swappiness range is 0-100', true],
      [{ MemorySwappiness: -2 }, 'Invalid value: -2, valid memory swappiness range is 0-100', true],
      [{ CpuPeriod: 999 }, 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)', true],
      [{ CpuPeriod: 1_000_001 }, 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)', true],
      [{ NanoCpus: 1e9, CpuPeriod: 100_000 }, 'Conflicting options: Nano CPUs and CPU Period cannot both be set', true],
      [{ NanoCpus: 1e9, CpuQuota: 50_000 }, 'Conflicting options: Nano CPUs and CPU Quota cannot both be set', true],
      // dockerd 20.10 lets this through to start; current Docker refuses it at create.
      [{ IpcMode: 'invalid' }, 'invalid IPC mode: invalid', false],
    ];
    for (const [host, message, dockerHasRule] of rows) {
      await refused({ HostConfig: host }, message);
      if (!dockerHasRule) continue;
      const ref = await refCreate({ HostConfig: host });
      if (ref) assert.deepEqual([ref.status, ref.body.message], [400, message], JSON.stringify(host));
    }
    for (const host of [{ OomScoreAdj: 1000 }, { OomScoreAdj: -1000 }, { MemorySwappiness: -1 }, { MemorySwappiness: 0 }, { MemorySwappiness: 100 }, { CpuPeriod: 1000 }, { CpuPeriod: 1_000_000 }, { NanoCpus: 1e9 }, { CpuPeriod: 100_000, CpuQuota: 50_000 }, { IpcMode: 'none' }, { IpcMode: 'shareable' }])
      await accepted({ HostConfig: host });
    const r = await berth(['run', '--rm', '--oom-score-adj', '1001', 'busybox', 'true']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /range for oom score adj is \[-1000, 1000\]/);
  });

  test('50 concurrent creates of one name: one 201, 49 409s naming the holder, nothing else left', async () => {
    const name = `iv-race-${process.pid}`;
    const before = await inventory();
    const answers = await Promise.all(Array.from({ length: 50 }, () => create({}, name)));
    const won = answers.filter((a) => a.status === 201);
    const lost = answers.filter((a) => a.status === 409);
    assert.equal(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
    assert.equal(lost.length, 49);
    const holder = String(won[0]!.body.Id);
    for (const a of lost)
      assert.equal(
        a.body.message,
        `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    const listed = (await berthApi('GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ name: [name] }))}`)).body as unknown as { Id: string }[];
    assert.deepEqual(listed.map((c) => c.Id), [holder]);
    assert.equal((await berthApi('DELETE', `/containers/${holder}`)).status, 204);
    assert.deepEqual(await inventory(), before);
    assert.equal((await create({}, name)).status, 201, 'the name is free again');
    await berthApi('DELETE', `/containers/${name}`);
  });
});
