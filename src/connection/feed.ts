/**
 * What an exchange must supply to the shared lifecycle: its URL, its subscribe messages, how to classify a frame,
 * and optional heartbeat / rotation policy. Everything else (sockets, timers, backoff, counters) is shared.
 */
import type { Exchange, Tick } from '../tick.ts';
import type { RejectKind } from '../snapshots.ts';
import type { InstrumentLookup } from '../exchanges/instruments.ts';

export interface Rejection {
  readonly kind: RejectKind;
  readonly detail: string;
}

export type FrameResult =
  /** Trade data: the valid ticks, plus the reasons any other trades of the same frame were refused. */
  | { readonly kind: 'ticks'; readonly ticks: readonly Tick[]; readonly rejects?: readonly Rejection[] }
  /** The exchange confirmed a request (Binance SUBSCRIBE result, OKX subscribe ack). */
  | { readonly kind: 'ack' }
  /** The exchange listed what this socket is subscribed to (Binance LIST_SUBSCRIPTIONS), as exchange symbols. */
  | { readonly kind: 'subscriptions'; readonly symbols: readonly string[] }
  /** An application-level heartbeat answer (OKX text `pong`). */
  | { readonly kind: 'heartbeat' }
  /** A planned disconnect announced by the exchange: rotate to a fresh socket. */
  | { readonly kind: 'notice'; readonly detail: string }
  /** The exchange refused one symbol (unknown instrument): never resubscribe it; the others keep flowing. */
  | { readonly kind: 'symbol_refused'; readonly symbol: string; readonly detail: string }
  /** Bad input: counted per kind, logged rate-limited with a truncated sample, never emitted as a tick. */
  | { readonly kind: 'rejected'; readonly reject: RejectKind; readonly detail: string }
  /** Known and harmless (e.g. an unsubscribe ack): counted as a frame, nothing else. */
  | { readonly kind: 'ignore' };

/**
 * Active liveness, independent of market activity: after `idleMs` without any inbound frame, send a ping; if
 * nothing at all arrives within `timeoutMs` after it, the socket is dead (terminated, reason `heartbeat`). Any
 * inbound frame (data, the pong, the exchange's own ping) proves the peer alive, so a busy socket never pings.
 */
export interface HeartbeatPolicy {
  readonly idleMs: number;
  readonly timeoutMs: number;
  /** A WebSocket ping control frame (Binance), or a text payload (OKX `ping`). */
  readonly ping: 'frame' | { readonly text: string };
}

export interface Feed {
  readonly exchange: Exchange;
  /** The full WebSocket URL for this symbol set (bases come from config; the feed adds the path). */
  url(symbols: readonly string[]): string;
  /** What the connection subscribes to, for messages (e.g. `@trade`, `trades-all`). */
  readonly channel: string;
  /** Text frames to send once the socket is open, paced by `controlIntervalMs` (may be empty). */
  subscribeMessages(symbols: readonly string[]): readonly string[];
  /** Frames that request again the symbols a `subscriptions` listing lacked, then list again. */
  resubscribeMessages?(symbols: readonly string[]): readonly string[];
  /** Least spacing between control frames we send (Binance counts them, with pings and pongs, against 5/s). */
  readonly controlIntervalMs?: number;
  /** Classify one inbound text frame. Must be pure apart from the clock value passed in. Never throws. */
  classify(text: string, receivedAt: number): FrameResult;
  /** Our ping and its deadline; without one only the silence watchdog judges the socket. */
  readonly heartbeat?: HeartbeatPolicy;
  /** The exchange's public instrument list, to confirm a refused symbol (OKX 60018) before giving up on it. */
  readonly instruments?: InstrumentLookup;
  /** Rotate to a fresh socket before the exchange's connection age limit (Binance 24 h). */
  readonly maxAgeMs?: number;
}
