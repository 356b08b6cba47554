import { ContainerCreateBodySchema, ExecCreateBodySchema, ExecStartBodySchema, checkBody } from '@berth/api';

const schemas = { ContainerCreateBodySchema, ExecCreateBodySchema, ExecStartBodySchema };

/** The request bodies berthd checks against a schema. */
export type BodySchemaName = keyof typeof schemas;

/** `checkBody` of @berth/api with the named schema (hand-written checks, nothing to load). */
export async function checkBodyOf(name: BodySchemaName, body: unknown): Promise<unknown> {
  return checkBody(schemas[name], body);
}
