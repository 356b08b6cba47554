// N sequential `run --rm busybox true` through the Engine API from one process, the way the
// CLI sequences it (create, wait?condition=removed registered before start, start, wait
// result), without a CLI start per run. Prints the elapsed seconds.
//
//   node bench/lifecycle/api-runs.mjs SOCKET [N]
import { request } from 'node:http';

const [socketPath, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 50);
const agent = undefined;

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      { socketPath, method, path: `/v1.47${path}`, agent, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {} },
      (res) => {
        if (res.statusCode >= 400) {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`)));
          return;
        }
        resolve(res);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function json(res) {
  let text = '';
  for await (const d of res) text += d;
  return text ? JSON.parse(text) : null;
}

const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const { Id } = await json(await call('POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { AutoRemove: true } }));
  const waiting = await call('POST', `/containers/${Id}/wait?condition=removed`);
  (await call('POST', `/containers/${Id}/start`)).resume();
  const { StatusCode } = await json(waiting);
  if (StatusCode !== 0) throw new Error(`container ${Id} exited ${StatusCode}`);
}
console.log((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(3));
