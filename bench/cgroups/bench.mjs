// Measurements behind bench/cgroups/run.sh (issue 6); each prints one JSON line.
//
//   node bench/cgroups/bench.mjs setup N              cgroup create+configure+destroy through @berth/cgroups
//   node bench/cgroups/bench.mjs stats SOCKET ID N    GET /containers/ID/stats?stream=0&one-shot=1, N times
//   node bench/cgroups/bench.mjs runs SOCKET N        run --rm busybox true through the API, without and with limits
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const [what, ...args] = process.argv.slice(2);
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const round = (x) => Math.round(x * 1000) / 1000;
const summary = (xs) => ({ median: round(median(xs)), p90: round([...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN), n: xs.length });

function call(socketPath, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath, method, path, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode >= 400 ? reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)) : resolve(text)));
    });
    req.on('error', reject);
    req.end(data);
  });
}

if (what === 'setup') {
  const n = Number(args[0] ?? 50);
  const { createCgroupManager } = await import(join(root, 'libs/cgroups/dist/src/index.js'));
  const m = await createCgroupManager();
  const limits = {
    cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0' },
    memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20 },
    pids: { limit: 100 },
    devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }],
  };
  const out = {};
  for (const [label, res] of [['bare', {}], ['limits', limits]]) {
    const create = [];
    const destroy = [];
    for (let i = 0; i < n + 3; i++) {
      const path = `berth-bench/${process.pid}-${label}-${i}`;
      let t0 = process.hrtime.bigint();
      const h = await m.create(path, res);
      const c = ms(t0);
      t0 = process.hrtime.bigint();
      await h.destroy();
      const d = ms(t0);
      if (i >= 3) {
        create.push(c);
        destroy.push(d);
      }
    }
    out[label] = { create: summary(create), destroy: summary(destroy) };
  }
  // The parent made for the bench goes too.
  await m.open('berth-bench')?.destroy();
  console.log(JSON.stringify({ what: 'setup', version: m.version, mode: m.layout.mode, ...out }));
} else if (what === 'stats') {
  const [socket, id, nArg] = args;
  const n = Number(nArg ?? 30);
  const times = [];
  for (let i = 0; i < n + 3; i++) {
    const t0 = process.hrtime.bigint();
    JSON.parse(await call(socket, 'GET', `/v1.41/containers/${id}/stats?stream=0&one-shot=1`));
    if (i >= 3) times.push(ms(t0));
  }
  console.log(JSON.stringify({ what: 'stats', socket, ...summary(times) }));
} else if (what === 'runs') {
  const [socket, nArg] = args;
  const n = Number(nArg ?? 20);
  const hosts = {
    bare: { NetworkMode: 'none', AutoRemove: true },
    limits: { NetworkMode: 'none', AutoRemove: true, NanoCpus: 5e8, Memory: 64 << 20, MemorySwap: 128 << 20, PidsLimit: 100, CpuShares: 512, CpusetCpus: '0', BlkioWeight: 300 },
  };
  const out = {};
  const times = { bare: [], limits: [] };
  // Interleaved, so drift on a busy host hits both the same.
  for (let i = 0; i < n + 2; i++) {
    for (const label of ['bare', 'limits']) {
      const t0 = process.hrtime.bigint();
      const { Id } = JSON.parse(await call(socket, 'POST', '/v1.41/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: hosts[label] }));
      const waiting = call(socket, 'POST', `/v1.41/containers/${Id}/wait?condition=removed`);
      await call(socket, 'POST', `/v1.41/containers/${Id}/start`);
      const { StatusCode } = JSON.parse(await waiting);
      if (StatusCode !== 0) throw new Error(`${label}: exit ${StatusCode}`);
      if (i >= 2) times[label].push(ms(t0));
    }
  }
  for (const label of Object.keys(times)) out[label] = summary(times[label]);
  console.log(JSON.stringify({ what: 'runs', socket, ...out, limitsCost: round(median(times.limits) - median(times.bare)) }));
} else {
  console.error('usage: bench.mjs setup N | stats SOCKET ID N | runs SOCKET N');
  process.exit(2);
}
