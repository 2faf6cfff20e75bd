/** A pino destination that keeps every line in memory, parsed, for assertions on what the collector logged. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.ts';
import type { Logger } from '../../src/logger.ts';

export interface LogCapture {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
  readonly raw: string[];
  find(pred: (line: Record<string, unknown>) => boolean): Array<Record<string, unknown>>;
}

export function captureLogs(level = 'debug', max = 200_000): LogCapture {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  let pending = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (raw.length >= max) continue;
        raw.push(line);
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          lines.push({ unparsed: line });
        }
      }
      cb();
    },
  });
  const logger = createLogger({ level, destination });
  return { logger, lines, raw, find: (pred) => lines.filter(pred) };
}
