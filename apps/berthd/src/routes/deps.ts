import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Engine } from '@berth/engine';
import type { Logger } from '@berth/log';
import type { Query } from '../http/query.js';

/** What route modules get: the engine and the server's settings; no state of their own. */
export interface RouteDeps {
  engine: Engine;
  logger: Logger;
  /** Headers of every response (Api-Version, Server, ...), for hand-written responses. */
  headers: Record<string, string>;
}

export type Register = (app: FastifyInstance, deps: RouteDeps) => void;

export const queryOf = (req: FastifyRequest): Query => req.query as Query;
export const paramsOf = (req: FastifyRequest): Record<string, string> => req.params as Record<string, string>;
/** A request header's (first) value; `name` in lower case. */
export const headerOf = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

declare module 'fastify' {
  interface FastifyRequest {
    /** The API version the request speaks (its path prefix, else the daemon's newest). */
    apiVersion: string;
  }
}
