/** Storage errors with stable codes, and the one place that decides whether a database error is worth retrying. */
import { CollectorError } from '../errors.ts';

/** A database operation failed (code E_DB). `kind` says how the writer treats it. */
export class StorageError extends CollectorError {
  readonly kind: DbErrorKind;
  constructor(message: string, kind: DbErrorKind, options?: { cause?: unknown }) {
    super('E_DB', message, options);
    this.kind = kind;
  }
}

/** The on-disk spill journal could not be written or read (code E_SPILL). */
export class SpillError extends CollectorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_SPILL', message, options);
  }
}

/**
 * - `data`: the rows themselves are bad (SQLSTATE class 22 data exception, 23 integrity violation): retrying the
 *   same rows can never succeed, so the batch is split to isolate the bad row.
 * - `transient`: connection refused/reset/terminated, timeouts, server shutting down, too many connections,
 *   serialization failures: retry with backoff.
 * - `other`: anything else (e.g. a missing table). Also retried with backoff, because dropping ticks is never an
 *   option; it is logged as an error so an operator sees it.
 */
export type DbErrorKind = 'data' | 'transient' | 'other';

const TRANSIENT_SQLSTATE_PREFIXES = ['08', '53', '57', '40', '55P03', '58'];
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'ECONNABORTED', 'ERR_SOCKET_CLOSED', 'ERR_STREAM_DESTROYED',
]);
const TRANSIENT_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /timeout waiting for a connection slot/i,
  /query read timeout/i,
  /timeout expired/i,
  /client has encountered a connection error/i,
  /not queryable/i,
  /connection (pool|slot) (is )?closed/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function classifyDbError(err: unknown): DbErrorKind {
  if (err instanceof StorageError) return err.kind;
  const state = sqlState(err);
  if (state !== undefined) {
    if (state.startsWith('22') || state.startsWith('23')) return 'data';
    if (TRANSIENT_SQLSTATE_PREFIXES.some((p) => state.startsWith(p))) return 'transient';
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TRANSIENT_NODE_CODES.has(code)) return 'transient';
  const message = err instanceof Error ? err.message : String(err);
  if (TRANSIENT_MESSAGES.some((re) => re.test(message))) return 'transient';
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause !== undefined && cause !== err) {
    const inner = classifyDbError(cause);
    if (inner !== 'other') return inner;
  }
  if (err instanceof AggregateError) {
    for (const e of err.errors) if (classifyDbError(e) === 'transient') return 'transient';
  }
  return 'other';
}

/** A short human reason for a log line: SQLSTATE plus the server message. */
export function describeDbError(err: unknown): string {
  const state = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  return state ? `${state} ${message}` : message;
}
