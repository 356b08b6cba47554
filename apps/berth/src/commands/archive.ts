/** save and load (docker save / docker load). */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isatty } from 'node:tty';
import { bool, str, type CommandSpec, type ParsedArgs } from '../cli/args.js';
import { CliError } from '../client.js';
import type { Context } from '../context.js';
import type { Command } from '../main.js';
import { stdout } from '../output/stdio.js';
import { printJsonMessages } from './run.js';

async function save(ctx: Context, p: ParsedArgs): Promise<number> {
  const output = str(p, 'output');
  if (!output && isatty(1)) throw new CliError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const res = await ctx.client.stream('GET', '/images/get', { query: { names: p.args } });
  if (output) {
    // As docker: a temp file beside the target, renamed once complete (no half-written archive).
    const tmp = join(dirname(output), `.${basename(output)}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      // A 4 MiB buffer: with the default 16 KiB the socket paused for every file write, and
      // berthd and this process took turns waiting (bench/storage, save: 1.17 -> ~0.85 s).
      await pipeline(res, createWriteStream(tmp, { mode: 0o600, highWaterMark: 4 << 20 }));
      await rename(tmp, output);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  } else
    for await (const chunk of res) {
      if (!stdout().write(chunk as Buffer)) await new Promise((r) => stdout().once('drain', r));
    }
  return 0;
}

/**
 * A file to send as a request body: read in 1 MiB pieces, with its size when it is a regular
 * file (sent with Content-Length, no chunked framing: bench/storage, import and load).
 */
export async function openBody(file: string): Promise<{ body: NodeJS.ReadableStream; size: number | null }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CliError(`open ${file}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`);
  }
  const st = await fh.stat();
  return { body: fh.createReadStream({ highWaterMark: 1 << 20 }), size: st.isFile() ? st.size : null };
}

async function load(ctx: Context, p: ParsedArgs): Promise<number> {
  const input = str(p, 'input');
  if (!input && isatty(0)) throw new CliError('requested load from stdin, but stdin is empty');
  let body: NodeJS.ReadableStream = process.stdin;
  const headers: Record<string, string> = { 'Content-Type': 'application/x-tar' };
  if (input) {
    const f = await openBody(input);
    body = f.body;
    if (f.size !== null) headers['Content-Length'] = String(f.size);
  }
  // Progress only on a terminal, as docker.
  const quiet = bool(p, 'quiet') || !isatty(1);
  const res = await ctx.client.stream('POST', '/images/load', { query: { quiet: quiet ? '1' : '0' }, body, headers });
  await printJsonMessages(res, ctx.out);
  return 0;
}

const saveSpec: CommandSpec = {
  usage: 'save [OPTIONS] IMAGE [IMAGE...]',
  description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  minArgs: 1,
  aliases: ['berth image save', 'berth save'],
  flags: [{ name: 'output', short: 'o', type: 'string', valueName: 'string', description: 'Write to a file, instead of STDOUT' }],
};

const loadSpec: CommandSpec = {
  usage: 'load [OPTIONS]',
  description: 'Load an image from a tar archive or STDIN',
  maxArgs: 0,
  aliases: ['berth image load', 'berth load'],
  flags: [
    { name: 'input', short: 'i', type: 'string', valueName: 'string', description: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the load output' },
  ],
};

export const commands: Record<string, Command> = {
  save: { spec: saveSpec, run: save },
  load: { spec: loadSpec, run: load },
};
