import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '@berth/errors';
import { defaultSpec } from '@berth/runtime';
import { parseArgs, str } from '../args.js';

export function spec(argv: string[]): number {
  const p = parseArgs(argv, { bundle: { value: true, short: 'b' }, rootless: { value: false } });
  const file = join(str(p, 'bundle') ?? '.', 'config.json');
  if (existsSync(file)) throw new BerthError('BERTH_INVALID_ARGUMENT', `File ${file} exists. Remove it first`);
  writeFileSync(file, JSON.stringify(defaultSpec(), null, '\t') + '\n');
  return 0;
}
