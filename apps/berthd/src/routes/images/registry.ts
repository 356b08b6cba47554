import type { FastifyReply, FastifyRequest } from 'fastify';
import { decodeRegistryAuth } from '@berth/engine';
import { str, type Query } from '../../http/query.js';
import { MessageStream, errorMessage } from '../../http/reply.js';
import { headerOf, type RouteDeps } from '../deps.js';


async function streamed(req: FastifyRequest, reply: FastifyReply, what: string, run: (out: MessageStream) => Promise<void>): Promise<void> {
  const out = new MessageStream(reply);
  try {
    await run(out);
    out.end();
  } catch (err) {
    if (!out.started) throw err;
    req.log.info({ err }, `${what} failed after the stream started`);
    const message = errorMessage(err);
    out.write({ errorDetail: { message }, error: message });
    out.end();
  }
}

/** `POST /images/create?fromImage=&tag=`: a pull; `tag` may be a digest. */
export async function pullRoute({ engine }: RouteDeps, req: FastifyRequest, reply: FastifyReply, q: Query): Promise<void> {
  const fromImage = str(q, 'fromImage') ?? '';
  const tag = str(q, 'tag') ?? '';
  const ref = tag !== '' ? `${fromImage}${tag.includes(':') ? '@' : ':'}${tag}` : fromImage;
  const auth = decodeRegistryAuth(headerOf(req, 'x-registry-auth'));
  await streamed(req, reply, 'pull', async (out) => {
    await engine.pullImage(ref, auth, (m) => out.write(m));
  });
}

/** `POST /images/{name}/push?tag=`. */
export async function pushRoute({ engine }: RouteDeps, req: FastifyRequest, reply: FastifyReply, name: string, q: Query): Promise<void> {
  const auth = decodeRegistryAuth(headerOf(req, 'x-registry-auth'));
  await streamed(req, reply, 'push', async (out) => {
    await engine.pushImage(name, str(q, 'tag') ?? '', auth, (m) => out.write(m));
  });
}
