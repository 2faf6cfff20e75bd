/** Public types of the local exchange simulator. */
import type { Logger } from 'pino';

export type SimExchange = 'binance' | 'okx';
export const SIM_EXCHANGES: readonly SimExchange[] = ['binance', 'okx'];

export type FaultKind =
  | 'close1001'
  | 'reset'
  | 'fin'
  | 'blackhole'
  | 'stallHandshake'
  | 'refuse503'
  | 'refuse429'
  | 'serverShutdown'
  | 'notice64008'
  | 'malformed'
  | 'oversized'
  | 'partialSubscriptions'
  | 'errorFrame';

export type RestFaultKind = 'fail500' | 'rateLimit429' | 'rateLimit200';

/**
 * What keeps an OKX connection from the 4004 idle close (protocols.md §B4 leaves it ambiguous): `both` (default) any
 * frame sent or received; `client` only frames from the client; `server` only frames the server pushed.
 */
export type OkxIdleActivity = 'both' | 'client' | 'server';

export interface FaultSchedule {
  everyMs: number;
  kinds: FaultKind[];
  exchanges?: SimExchange[];
}

export interface SimulatorOptions {
  host?: string;
  binancePort?: number;
  okxPort?: number;
  binanceSymbols?: string[];
  okxSymbols?: string[];
  tradesPerSecond?: number;
  seed?: number;
  firstTradeId?: number;
  binancePingIntervalMs?: number;
  binancePongTimeoutMs?: number;
  binanceMaxConnectionAgeMs?: number;
  binanceInboundPerSecond?: number;
  binanceHandshakesPer5Min?: number;
  /** REST request weight allowed per window (default 6000). */
  binanceWeightPerMinute?: number;
  /** Length of the REST weight window (default 60000; shorten in tests). */
  binanceWeightWindowMs?: number;
  /** Repeated 429s in one weight window beyond this many earn a 418 ban of two windows (0 disables; default 10). */
  binanceBanAfterRejections?: number;
  /** Handshake URLs longer than this are refused with HTTP 414 (real servers: about 8,000; default 8004). */
  binanceMaxUrlLength?: number;
  /** Control errors as servers send them, `{"error":{code,msg},"id"}` (default), or flat as the docs print them. */
  binanceErrorShape?: 'nested' | 'flat';
  okxIdleTimeoutMs?: number;
  /** Which OKX URL serves `trades-all` (default business); `public` emulates OKX moving it (60018 on /business). */
  okxTradesAllOn?: 'business' | 'public';
  /** OKX codes as JSON numbers (`"code":0`, `"code":50011`), as some real answers carry them (default false). */
  okxNumericCodes?: boolean;
  /** Instrument states served by exchangeInfo / public/instruments, by exchange-native symbol (default TRADING / live). */
  symbolStates?: Record<string, string>;
  okxIdleActivity?: OkxIdleActivity;
  okxHandshakesPerSecond?: number;
  okxSubscribesPerHour?: number;
  /** history-trades requests per 2 s per IP (default 20). */
  okxHistoryRequestsPer2s?: number;
  /** market/trades requests per 2 s per IP (default 100). */
  okxTradesRequestsPer2s?: number;
  shutdownCloseDelayMs?: number;
  noticeCloseDelayMs?: number;
  retryAfterSeconds?: number;
  oversizedBytes?: number;
  /** A socket whose unsent backlog exceeds this is dropped (OKX: close 4005). Default 64 MiB. */
  maxBufferedBytes?: number;
  faultSchedule?: FaultSchedule;
  tapeRetention?: number;
  logger?: Logger;
}

export interface SimTrade {
  symbol: string;
  tradeId: number;
  price: string;
  qty: string;
  /** The taker's side. */
  side: 'buy' | 'sell';
  /** ms since epoch; the moment the trade was sent. */
  time: number;
}

export interface TapeRange {
  first: number;
  last: number;
}

export interface SimStats {
  handshakes: Record<SimExchange, number>;
  /** Keyed `<exchange>:<kind>` (socket/upgrade faults) and `<exchange>:rest:<kind>` (REST faults). */
  faultsInjected: Record<string, number>;
  framesSent: Record<SimExchange, number>;
  /** The most inbound messages one Binance socket sent within one second (requests, pings and pongs). */
  binanceInboundPeakPerSecond: number;
}
