/**
 * Read-only figures each stage exposes for the stats line, /metrics and /readyz. Counters are cumulative since the
 * process started; the monitor computes per-interval deltas. Monitoring reads these; it never sits in the data path.
 */
import type { Exchange } from './tick.ts';

export type ConnectionStateName =
  | 'idle'
  | 'connecting'
  | 'subscribing'
  | 'live'
  | 'rotating' // live on the old socket while a planned replacement connects
  | 'closing'
  | 'backoff'
  | 'stopping'
  | 'stopped';

/** Why a connection was torn down and replaced. A bounded set (metric label). */
export type ReconnectReason =
  | 'close' // the server closed (code in closeCodes)
  | 'error' // socket error / TCP reset
  | 'silence' // no data and no heartbeat for silenceTimeoutMs
  | 'heartbeat' // our ping went unanswered (OKX pong deadline)
  | 'handshake_timeout'
  | 'notice' // exchange-announced disconnect (Binance serverShutdown, OKX 64008)
  | 'rotation' // planned rotation before the exchange's connection age limit
  | 'refused' // upgrade refused with an HTTP status (429/418/503...)
  | 'protocol'; // the peer broke the protocol (oversized frame, invalid frame)
export const RECONNECT_REASONS: readonly ReconnectReason[] = [
  'close', 'error', 'silence', 'heartbeat', 'handshake_timeout', 'notice', 'rotation', 'refused', 'protocol',
];

/** Kinds of bad input from an exchange. A bounded set (metric label). */
export type RejectKind =
  | 'invalid_json'
  | 'binary'
  | 'missing_field'
  | 'bad_type'
  | 'bad_number'
  | 'unknown_event'
  | 'oversized'
  | 'exchange_error';
export const REJECT_KINDS: readonly RejectKind[] = [
  'invalid_json', 'binary', 'missing_field', 'bad_type', 'bad_number', 'unknown_event', 'oversized', 'exchange_error',
];

export interface ConnectionSnapshot {
  readonly exchange: Exchange;
  readonly connId: string;
  readonly state: ConnectionStateName;
  /** ms epoch when the current socket went live; null while not live. */
  readonly liveSince: number | null;
  readonly connects: number;
  readonly reconnects: number;
  readonly reconnectsByReason: Readonly<Record<ReconnectReason, number>>;
  /** Close codes seen on server-initiated closes, e.g. {"1001": 3}. Codes outside 1000-4999 count as "other". */
  readonly closeCodes: Readonly<Record<string, number>>;
  readonly lastBackoffMs: number;
  readonly frames: number;
  readonly ticks: number;
  readonly rejected: Readonly<Record<RejectKind, number>>;
  /** The symbols this connection serves. */
  readonly symbols: readonly string[];
}

export interface PipelineSnapshot {
  readonly ticksReceived: number;
  readonly ticksStored: number;
  /** Ticks a batch insert reported as already present (idempotent duplicates). */
  readonly ticksDuplicate: number;
  readonly ticksRejected: number;
  readonly bufferDepth: number;
  readonly bufferMax: number;
  readonly journalBytes: number;
  readonly journalTicks: number;
  readonly batches: number;
  readonly batchLatencyMsP50: number;
  readonly batchLatencyMsP99: number;
  readonly batchLatencyMsMax: number;
  /** ms epoch of the last successful database write; null if none yet. */
  readonly lastWriteOkAt: number | null;
  readonly writeErrors: number;
  /** True while the sink asks producers to pause (journal unwritable). */
  readonly backpressure: boolean;
  /** Live trades whose id was already stored with other values (price, qty, side or time); the stored row is kept. */
  readonly ticksConflicting?: number;
  /** Live trades at or below the last id seen for their symbol that were not stored yet: stored, counted here. */
  readonly ticksOutOfOrder?: number;
}

export interface PoolSnapshot {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
  /** Connections closed because they idled past PG_IDLE_TIMEOUT_MS (or aged/used out). */
  readonly expired: number;
  readonly resets: number;
  readonly errors: number;
  readonly max: number;
}

/** Completeness: trade-id gaps found in the live streams and their REST backfill. */
export interface GapsSnapshot {
  /** Gaps detected since start (each a missing id range of one symbol). */
  readonly detected: number;
  /** Gaps currently being fetched or waiting for a retry. */
  readonly open: number;
  readonly filled: number;
  /** Gaps recorded as not fillable now (REST failing, data gone, range too large); retried later. */
  readonly unfillable: number;
  readonly backfilledTicks: number;
  readonly restRequests: number;
  readonly restErrors: number;
  readonly restRateLimited: number;
}
