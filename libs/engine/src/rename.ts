/** Container rename. */
import { invalid } from './config.js';
import type { EngineContext } from './context.js';
import { nameConflict, normaliseName } from './names.js';

export async function renameContainer(ctx: EngineContext, ref: string, newName: string): Promise<void> {
  const c = ctx.get(ref);
  const name = normaliseName(newName);
  if (name === c.name) throw invalid('name', 'Renaming a container with the same name as its current name');
  const holder = [...ctx.containers.values()].find((o) => o.name === name);
  if (holder) throw nameConflict(name, holder.id);
  const old = c.rec.Name;
  c.rec.Name = `/${name}`;
  ctx.save(c);
  ctx.emit(c, 'rename', { oldName: old });
}
