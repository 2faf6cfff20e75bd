/** One root pino logger; components take children bound to {component, exchange, connId}. Secrets never printed. */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

const URL_PASSWORD_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^:@\s/]*:)([^@\s]*)@/gi;
const KEYWORD_PASSWORD_RE = /\b(password\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi;

/** Replaces the password of any `scheme://user:password@` URL and any `password=...` pair with `***`. */
export function redactSecrets(text: string): string {
  return text.replace(URL_PASSWORD_RE, '$1***@').replace(KEYWORD_PASSWORD_RE, '$1***');
}

const MAX_DEPTH = 8;

function redactDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return errSerializer(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = /password/i.test(k) ? '***' : redactDeep(v, depth + 1);
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
  /** Write here instead of stdout (tests capture logs this way). */
  destination?: pino.DestinationStream;
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
  if (options.pretty) return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(base);
}

/** A logger that writes nowhere, for library code constructed without one. */
export const silentLogger: Logger = pino({ level: 'silent' });
