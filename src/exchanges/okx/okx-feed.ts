/**
 * OKX v5: `/ws/v5/business` `trades-all`, one subscribe request per 100 instruments, text `ping` after a short idle
 * time with a `pong` deadline (OKX itself closes a socket idle for 30 s and answers no WebSocket ping frame).
 * OKX sends its 64008 upgrade notice only on /public and /private, so on /business an upgrade arrives as a plain
 * close (reconnected at once by the shared lifecycle) or a reset; the notice is still honoured should it come.
 */
import type { Feed } from '../../connection/feed.ts';
import type { InstrumentLookup } from '../instruments.ts';
import { classifyOkxFrame, OKX_TRADES_CHANNEL } from './okx-mapper.ts';

/** Keep each request's args far below the documented 64 KB. */
const ARGS_PER_REQUEST = 100;
export const OKX_BUSINESS_PATH = '/ws/v5/business';

export interface OkxFeedOptions {
  readonly wsBaseUrl: string;
  /** Send `ping` after this long without any inbound frame (the server closes at 30 s). */
  readonly pingIdleMs: number;
  readonly pongTimeoutMs: number;
  /** Confirms a refused instrument (60018) before it is given up on. */
  readonly instruments?: InstrumentLookup;
}

export function okxSubscribeMessages(symbols: readonly string[]): string[] {
  const messages: string[] = [];
  for (let i = 0; i < symbols.length; i += ARGS_PER_REQUEST) {
    const args = symbols.slice(i, i + ARGS_PER_REQUEST).map((instId) => ({ channel: OKX_TRADES_CHANNEL, instId }));
    messages.push(JSON.stringify({ id: String(messages.length + 1), op: 'subscribe', args }));
  }
  return messages;
}

export function createOkxFeed(opts: OkxFeedOptions): Feed {
  return {
    exchange: 'okx',
    channel: OKX_TRADES_CHANNEL,
    url: () => `${opts.wsBaseUrl}${OKX_BUSINESS_PATH}`,
    subscribeMessages: okxSubscribeMessages,
    classify: classifyOkxFrame,
    heartbeat: { idleMs: opts.pingIdleMs, timeoutMs: opts.pongTimeoutMs, ping: { text: 'ping' } },
    ...(opts.instruments ? { instruments: opts.instruments } : {}),
  };
}
