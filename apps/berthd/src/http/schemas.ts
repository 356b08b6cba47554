type Api = typeof import('@berth/api');
let api: Promise<Api> | undefined;

/** The request bodies berthd checks against a schema. */
export type BodySchemaName = 'ContainerCreateBodySchema' | 'ExecCreateBodySchema' | 'ExecStartBodySchema';

/**
 * `checkBody` of @berth/api with the named schema. The schemas (typebox and its value checker,
 * ~3.5 MiB of heap) load on the first request that has a body to check, not at start: everything
 * else imports the light `@berth/api/wire`.
 */
export async function checkBodyOf(name: BodySchemaName, body: unknown): Promise<unknown> {
  const m = await (api ??= import('@berth/api'));
  return m.checkBody(m[name], body);
}
