/** What every command gets: the client (made on first use), the command path, output helpers. */
import { CliError, Client, DEFAULT_HOST } from './client.js';
import { writeOut } from './output/stdio.js';
import { TemplateError } from './output/template.js';

export interface Context {
  readonly host: string;
  /** `run`, `container inspect`, ... */
  readonly path: string;
  readonly client: Client;
  /** Bytes go out as they are (a large inspect answer is never made a string). */
  out(s: string | Uint8Array): void;
  err(s: string): void;
}

export function makeContext(host: string | undefined, path: string): Context {
  const h = host && host !== '' ? host : DEFAULT_HOST;
  let client: Client | undefined;
  return {
    host: h,
    path,
    get client(): Client {
      client ??= new Client(h, process.env.BERTH_API_VERSION || process.env.DOCKER_API_VERSION || undefined);
      return client;
    },
    out: (s) => writeOut(s),
    err: (s) => void process.stderr.write(s),
  };
}

/** Prints an error the docker way and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(err.message.endsWith('\n') ? err.message : `${err.message}\n`);
    return err.code;
  }
  if (err instanceof TemplateError) {
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  const e = err as Error;
  process.stderr.write(`Error: ${e?.message ?? String(err)}\n`);
  if (process.env.BERTH_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}
