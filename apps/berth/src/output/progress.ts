/**
 * JSON-message streams (pull, push) as the docker CLI shows them: on a terminal one line per
 * layer id, rewritten in place (cursor up/down); elsewhere plain status lines, and progress
 * bar messages left out.
 */
import { forEachLine } from './lines.js';

export interface ProgressMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message: string };
  aux?: Record<string, unknown>;
}

export class ProgressPrinter {
  private readonly lines = new Map<string, number>();

  constructor(
    private readonly write: (s: string) => void,
    private readonly tty: boolean,
  ) {}

  /** Prints one message; answers the error text of an in-band error. */
  print(m: ProgressMessage): string | undefined {
    if (m.errorDetail !== undefined || m.error !== undefined) return m.errorDetail?.message ?? m.error;
    if (m.aux !== undefined) return undefined;
    const hasBar = m.progress !== undefined && m.progress !== '';
    if (!this.tty) {
      if (hasBar) return undefined;
      if (m.stream !== undefined) this.write(m.stream);
      else if (m.status !== undefined) this.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
      return undefined;
    }
    if (m.id !== undefined && m.id !== '' && m.progressDetail !== undefined) {
      let line = this.lines.get(m.id);
      if (line === undefined) {
        line = this.lines.size;
        this.lines.set(m.id, line);
        this.write('\n');
      }
      const up = this.lines.size - line;
      this.write(`\x1b[${up}A\r\x1b[2K${m.id}: ${m.status ?? ''}${hasBar ? ` ${m.progress}` : ''}\r\x1b[${up}B`);
      return undefined;
    }
    // Anything else ends the block of layer lines.
    this.lines.clear();
    if (m.stream !== undefined) this.write(m.stream);
    else if (m.status !== undefined) this.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
    return undefined;
  }
}

/** Reads a `\r\n`-separated JSON-message body, printing as it goes; answers the in-band error, if any. */
export async function printProgress(body: AsyncIterable<Buffer | string> | Iterable<Buffer | string>, printer: ProgressPrinter, onMessage?: (m: ProgressMessage) => void): Promise<string | undefined> {
  let error: string | undefined;
  const handle = (line: string): void => {
    if (line.trim() === '') return;
    let m: ProgressMessage;
    try {
      m = JSON.parse(line) as ProgressMessage;
    } catch {
      return;
    }
    onMessage?.(m);
    error = printer.print(m) ?? error;
  };
  await forEachLine(body, (line) => handle(line.replace(/\r$/, '')));
  return error;
}
