/** Typed errors with stable codes: callers branch on `code`, never on message text. */

export type ErrorCode =
  | 'E_CONFIG'
  | 'E_PROTOCOL'
  | 'E_HANDSHAKE_REFUSED'
  | 'E_HANDSHAKE_TIMEOUT'
  | 'E_ILLEGAL_TRANSITION'
  | 'E_DB'
  | 'E_SPILL'
  | 'E_REST'
  | 'E_REST_RATE_LIMITED'
  | 'E_CLI'
  /** The exchange refused every instrument of a connection: its URL, channel or symbols are wrong. */
  | 'E_SUBSCRIPTION_REFUSED'
  | 'E_ARCHIVE';

export class CollectorError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A configuration value is missing or malformed; the message names the variable and the expected form. */
export class ConfigError extends CollectorError {
  readonly variable: string;
  constructor(variable: string, expected: string, got: string | undefined) {
    super('E_CONFIG', `${variable}: expected ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
    this.variable = variable;
  }
}

/** A WebSocket upgrade the server refused with an HTTP status (429/418/503...). */
export class HandshakeRefusedError extends CollectorError {
  readonly status: number;
  /** Milliseconds the server asked us to wait (Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, retryAfterMs: number | undefined) {
    super('E_HANDSHAKE_REFUSED', `upgrade refused with HTTP ${status}${retryAfterMs !== undefined ? `, retry after ${retryAfterMs} ms` : ''}`);
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Parses an HTTP Retry-After header (seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(header: string | string[] | undefined | null, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === null || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
