import { StringDecoder } from 'node:string_decoder';

/**
 * Calls `handle` with each line of a newline-separated text body as it arrives (without its
 * `\n`), then with what follows the last newline: the JSON-message and event streams the daemon
 * sends. A character split across chunks stays whole.
 */
export async function forEachLine(body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, handle: (line: string) => void): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let buf = '';
  for await (const chunk of body) {
    buf += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      handle(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
  handle(buf + decoder.end());
}
