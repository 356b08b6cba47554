/** Container rename. */
import { BerthError } from '@berth/errors';
import { invalid } from './config.js';
import type { EngineContext } from './context.js';
import { nameConflict, normaliseName } from './names.js';

/**
 * dockerd's order: the container first (404), then the same name, then the new name's rules and
 * its holder, both "Error when allocating new name: ..." (with the name as `/name`).
 */
export async function renameContainer(ctx: EngineContext, ref: string, newName: string): Promise<void> {
  const c = ctx.get(ref);
  const slashed = newName.startsWith('/') ? newName : `/${newName}`;
  if (slashed.slice(1) === c.name) throw invalid('name', 'Renaming a container with the same name as its current name');
  const allocating = (err: BerthError): BerthError => new BerthError(err.code, `Error when allocating new name: ${err.message}`, { cause: err, details: err.details });
  let name: string;
  try {
    name = normaliseName(slashed);
  } catch (err) {
    throw err instanceof BerthError ? allocating(err) : err;
  }
  const holder = [...ctx.containers.values()].find((o) => o.name === name);
  if (holder) throw allocating(nameConflict(name, holder.id));
  const old = c.rec.Name;
  c.rec.Name = `/${name}`;
  ctx.save(c);
  ctx.emit(c, 'rename', { oldName: old });
}
