/**
 * The real docker CLI against berthd with a container publishing a 10,000-port UDP range
 * (issue 5): docker ps compresses the range itself from Docker's one-entry-per-port list, docker
 * inspect and docker port see every port. berthd answers these from its cache of the port views.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { busyboxImageTar, startDaemon, type Daemon } from '@berth/test-support';

const DOCKER = process.env.BERTH_DOCKER_CLI ?? '/usr/local/bin/docker';
const PORTS = 10_000;

let daemon: Daemon;
let dockerConfig: string;
let lo = 0;
const name = `interop-range-${process.pid}`;

function docker(args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(DOCKER, args, { env: { ...process.env, DOCKER_HOST: daemon.host, DOCKER_CONFIG: dockerConfig }, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await docker(args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

describe('docker CLI against berthd: a 10,000-port range', { timeout: 180_000 }, () => {
  before(async () => {
    dockerConfig = mkdtempSync(path.join(tmpdir(), 'docker-config-'));
    daemon = await startDaemon();
    await ok(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest']);
    // Below the host's ephemeral ports (32768 on); a random base keeps concurrent runs apart.
    for (let attempt = 0; attempt < 3 && !lo; attempt++) {
      const base = 20000 + Math.floor(Math.random() * (32768 - 20000 - PORTS));
      const r = await docker(['run', '-d', '--name', name, '-p', `${base}-${base + PORTS - 1}:${base}-${base + PORTS - 1}/udp`, 'busybox', 'sleep', '600']);
      if (r.code === 0) lo = base;
      else await docker(['rm', '-f', name]);
    }
    assert.ok(lo, 'docker run -p with the range works');
  });
  after(async () => {
    await docker(['rm', '-f', name]);
    await daemon.cleanup();
    rmSync(dockerConfig, { recursive: true, force: true });
  });

  test('docker ps shows the range compressed (the CLI groups the Ports list itself)', async () => {
    const ports = (await ok(['ps', '--filter', `name=${name}`, '--format', '{{.Ports}}'])).trim();
    assert.equal(ports, `0.0.0.0:${lo}-${lo + PORTS - 1}->${lo}-${lo + PORTS - 1}/udp`);
  });

  test('docker inspect and docker port see every port', async () => {
    const n = (await ok(['inspect', '-f', '{{len .NetworkSettings.Ports}} {{len .HostConfig.PortBindings}} {{len .Config.ExposedPorts}}', name])).trim();
    assert.equal(n, `${PORTS} ${PORTS} ${PORTS}`);
    const [c] = JSON.parse(await ok(['inspect', name])) as Array<{ NetworkSettings: { Ports: Record<string, unknown> } }>;
    assert.deepEqual(c!.NetworkSettings.Ports[`${lo + PORTS - 1}/udp`], [{ HostIp: '0.0.0.0', HostPort: String(lo + PORTS - 1) }]);
    const lines = (await ok(['port', name])).trim().split('\n');
    assert.equal(lines.length, PORTS);
    assert.equal(lines[0], `${lo}/udp -> 0.0.0.0:${lo}`);
    assert.equal((await ok(['port', name, `${lo + 17}/udp`])).trim(), `0.0.0.0:${lo + 17}`);
  });
});
