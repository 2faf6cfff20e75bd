/** OKX v5: `/ws/v5/business` `trades-all`, one subscribe request, text ping/pong heartbeat, notice 64008. */
import type { Feed } from '../../connection/feed.ts';
import { classifyOkxFrame, OKX_TRADES_CHANNEL } from './okx-mapper.ts';

/** Keep each request's args far below the documented 64 KB. */
const ARGS_PER_REQUEST = 100;

export interface OkxFeedOptions {
  readonly wsBaseUrl: string;
  /** Send `ping` after this long without any inbound frame (the server closes at 30 s). */
  readonly pingIdleMs: number;
  readonly pongTimeoutMs: number;
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
    url: () => `${opts.wsBaseUrl}/ws/v5/business`,
    subscribeMessages: okxSubscribeMessages,
    classify: classifyOkxFrame,
    heartbeat: { idleMs: opts.pingIdleMs, timeoutMs: opts.pongTimeoutMs, payload: 'ping' },
  };
}
