/** The berth CLI e2e suite against a berthd on scratch roots (test/support). */
import { after } from 'node:test';
import { busyboxImageTar, startDaemon } from '@berth/test-support';
import { runBerth } from './support.js';
import { defineE2E } from './e2e-suite.js';

const daemon = await startDaemon();
after(() => daemon.cleanup());
const imported = await runBerth(['import', '-c', 'CMD ["sh"]', await busyboxImageTar(), 'busybox:latest'], { host: daemon.host });
if (imported.code !== 0) throw new Error(`berth import failed: ${imported.stderr}`);
defineE2E(daemon.host, 'berthd');
