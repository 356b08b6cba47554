// Bundles the berth CLI: dist/berth.cjs and its code cache (tools/bundle/bundle.mjs).
//   node apps/berth/scripts/bundle.mjs      (npm run bundle -w @berth/berth)
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleApp } from '../../../tools/bundle/bundle.mjs';

await bundleApp(join(dirname(fileURLToPath(import.meta.url)), '..'));
