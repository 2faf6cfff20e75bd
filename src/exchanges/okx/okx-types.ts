/** Raw OKX v5 public/business WebSocket payloads (protocols.md §B2-B5). Every number is a string. */

/** One element of a `trades-all` push: one trade, not aggregated. */
export interface OkxRawTrade {
  instId: string; // instrument, e.g. BTC-USDT
  tradeId: string; // contiguous per instrument
  px: string; // price
  sz: string; // size, base currency for spot
  side: 'buy' | 'sell'; // the taker's side
  source?: string; // "0" normal, "1" Enhanced Liquidity Program
  ts: string; // fill time, ms
}

/** `{"arg":{"channel":"trades-all","instId":"BTC-USDT"},"data":[...]}` */
export interface OkxPush<T> {
  arg: { channel: string; instId?: string };
  data: T[];
}

/** subscribe ack, unsubscribe ack, error (code is a string), notice 64008, channel-conn-count. */
export interface OkxEvent {
  event: 'subscribe' | 'unsubscribe' | 'error' | 'notice' | 'channel-conn-count' | 'channel-conn-count-error';
  arg?: { channel: string; instId?: string };
  code?: string;
  msg?: string;
  id?: string;
  connId?: string;
}
