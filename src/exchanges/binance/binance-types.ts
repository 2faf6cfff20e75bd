/** Raw Binance spot stream payloads (protocols.md §A2/A3), as they arrive on the wire. */

/** `<symbol>@trade` event. Pre-2024-06 payloads also carried `b` and `a` (order ids); they are ignored. */
export interface BinanceRawTrade {
  e: 'trade'; // event type
  E: number; // event time, ms
  s: string; // symbol, uppercase
  t: number; // trade id, contiguous per symbol
  p: string; // price
  q: string; // quantity
  T: number; // trade time, ms
  m: boolean; // is the buyer the market maker? true: the taker sold
  M?: boolean; // "ignore"
}

/** `{"e":"serverShutdown","E":...}`: the server is about to close; reconnect now. */
export interface BinanceServerShutdown {
  e: 'serverShutdown';
  E: number;
}

/** Combined-stream wrapper on `/stream?streams=`. */
export interface BinanceCombined<T> {
  stream: string;
  data: T;
}

/** Answer to a live control request: `{"result":null,"id":1}` or `{"error":{"code":2,"msg":"..."},"id":1}`. */
export interface BinanceControlResponse {
  id: number | string | null;
  result?: unknown;
  error?: { code: number; msg: string };
}
