/**
 * One root pino logger; components take children bound to {component, exchange, connId}. Secrets never printed
 * (src/redact.ts). Lines go to a LogSink (src/log-sink.ts): a failing destination drops lines, counted, and never
 * blocks or stops the collector. `LOG_PRETTY=1` formats in-process with pino-pretty, one line per entry, and the
 * stats line as a few readable lines (src/monitor/stats-text.ts); the JSON form always carries every field.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import { isatty } from 'node:tty';
import { LogSink } from './log-sink.ts';
import { statsText } from './monitor/stats-text.ts';
import { redactSecrets } from './redact.ts';

export type { Logger };
export { redactSecrets } from './redact.ts';

const MAX_DEPTH = 8;

function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return errSerializer(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = /password/i.test(k) && !/(file|path)$/i.test(k) ? '***' : redactDeep(v, depth + 1);
  return out;
}

function errSerializer(err: unknown): unknown {
  if (!(err instanceof Error)) return redactDeep(err);
  const serialized = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  return redactDeep({ ...serialized });
}

export interface LoggerOptions {
  level?: string;
  pretty?: boolean;
  /** Write here instead of a LogSink on stdout (tests capture logs this way). */
  destination?: pino.DestinationStream;
  /** The fd of the default LogSink (default 1). */
  fd?: number;
}

/** The pino-pretty line for an entry, except `stats`, which gets its header plus the lines of statsText(). */
export function prettyFormatter(colorize: boolean): (line: string) => string {
  const pretty = pinoPretty.prettyFactory({ colorize, singleLine: true, ignore: 'hostname' });
  return (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.msg === 'stats' && Array.isArray(entry.connections)) {
      const head = pretty({ level: entry.level, time: entry.time, pid: entry.pid, msg: 'stats' });
      return `${head}${statsText(entry).map((l) => `    ${l}\n`).join('')}`;
    }
    return pretty(entry);
  };
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base: pino.LoggerOptions = {
    level: options.level ?? 'info',
    base: { pid: process.pid },
    serializers: { err: errSerializer, error: errSerializer },
    hooks: {
      logMethod(args, method) {
        // `logger.error(err)` would put err.message in msg unredacted: give it a message of its own.
        const first: unknown = args[0];
        if (first instanceof Error && typeof args[1] !== 'string') args = [{ err: first }, first.message, ...args.slice(1)] as typeof args;
        const cleaned = args.map((a) => redactDeep(a)) as Parameters<typeof method>;
        method.apply(this, cleaned);
      },
    },
    formatters: { bindings: (b) => redactDeep(b) as Record<string, unknown> },
  };
  if (options.destination) return pino(base, options.destination);
  const fd = options.fd ?? 1;
  const colorize = options.pretty === true && isatty(fd);
  const sink = new LogSink({ fd, ...(options.pretty ? { format: prettyFormatter(colorize) } : {}) });
  return pino(base, sink);
}

/** A logger that writes nowhere, for library code constructed without one. */
export const silentLogger: Logger = pino({ level: 'silent' }, { write: () => undefined });
