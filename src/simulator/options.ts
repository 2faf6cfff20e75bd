/** Defaults and validation of SimulatorOptions. */
import type { Logger } from 'pino';
import { silentLogger } from '../logger.ts';
import type { FaultSchedule, OkxIdleActivity, SimulatorOptions } from './types.ts';
import { SIM_EXCHANGES } from './types.ts';
import { FAULT_KINDS } from './faults.ts';

export interface ResolvedOptions {
  host: string;
  binancePort: number;
  okxPort: number;
  binanceSymbols: string[];
  okxSymbols: string[];
  tradesPerSecond: number;
  seed: number;
  firstTradeId: number;
  binancePingIntervalMs: number;
  binancePongTimeoutMs: number;
  binanceMaxConnectionAgeMs: number;
  binanceInboundPerSecond: number;
  binanceHandshakesPer5Min: number;
  binanceWeightPerMinute: number;
  binanceWeightWindowMs: number;
  binanceBanAfterRejections: number;
  binanceMaxUrlLength: number;
  binanceErrorShape: 'nested' | 'flat';
  okxIdleTimeoutMs: number;
  okxIdleActivity: OkxIdleActivity;
  okxTradesAllOn: 'business' | 'public';
  okxNumericCodes: boolean;
  symbolStates: Record<string, string>;
  okxHandshakesPerSecond: number;
  okxSubscribesPerHour: number;
  okxHistoryRequestsPer2s: number;
  okxTradesRequestsPer2s: number;
  shutdownCloseDelayMs: number;
  noticeCloseDelayMs: number;
  retryAfterSeconds: number;
  oversizedBytes: number;
  maxBufferedBytes: number;
  faultSchedule: FaultSchedule | undefined;
  tapeRetention: number;
  logger: Logger;
}

const BINANCE_SYMBOL_RE = /^[A-Z0-9]{2,30}$/;
const OKX_SYMBOL_RE = /^[A-Z0-9]+(-[A-Z0-9]+)+$/;

function num(name: string, v: number | undefined, def: number, min: number): number {
  const x = v ?? def;
  if (!Number.isFinite(x) || x < min) throw new RangeError(`simulator option ${name}: expected a number >= ${min}, got ${String(v)}`);
  return x;
}

function int(name: string, v: number | undefined, def: number, min: number): number {
  const x = num(name, v, def, min);
  if (!Number.isSafeInteger(x)) throw new RangeError(`simulator option ${name}: expected an integer, got ${String(v)}`);
  return x;
}

function symbols(name: string, v: string[] | undefined, def: string[], re: RegExp): string[] {
  const list = v ?? def;
  for (const s of list) if (!re.test(s)) throw new RangeError(`simulator option ${name}: bad symbol ${JSON.stringify(s)}`);
  if (new Set(list).size !== list.length) throw new RangeError(`simulator option ${name}: duplicate symbol`);
  return [...list];
}

function idleActivity(v: OkxIdleActivity | undefined): OkxIdleActivity {
  const x = v ?? 'both';
  if (x !== 'both' && x !== 'client' && x !== 'server') throw new RangeError(`simulator option okxIdleActivity: expected both, client or server, got ${String(v)}`);
  return x;
}

function oneOf<T extends string>(name: string, v: T | undefined, allowed: readonly T[]): T {
  const x = v ?? allowed[0]!;
  if (!allowed.includes(x)) throw new RangeError(`simulator option ${name}: expected one of ${allowed.join(', ')}, got ${String(v)}`);
  return x;
}

function states(v: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v ?? {})) {
    if (typeof s !== 'string' || s === '') throw new RangeError(`simulator option symbolStates.${k}: expected a state name`);
    out[k] = s;
  }
  return out;
}

function schedule(s: FaultSchedule | undefined): FaultSchedule | undefined {
  if (s === undefined) return undefined;
  if (!(s.everyMs > 0)) throw new RangeError('simulator option faultSchedule.everyMs: expected > 0');
  if (s.kinds.length === 0) throw new RangeError('simulator option faultSchedule.kinds: expected at least one kind');
  for (const k of s.kinds) if (!FAULT_KINDS.includes(k)) throw new RangeError(`simulator option faultSchedule.kinds: unknown kind ${k}`);
  for (const e of s.exchanges ?? []) if (!SIM_EXCHANGES.includes(e)) throw new RangeError(`simulator option faultSchedule.exchanges: unknown exchange ${String(e)}`);
  return { everyMs: s.everyMs, kinds: [...s.kinds], ...(s.exchanges ? { exchanges: [...s.exchanges] } : {}) };
}

export function resolveOptions(o: SimulatorOptions = {}): ResolvedOptions {
  return {
    host: o.host ?? '127.0.0.1',
    binancePort: int('binancePort', o.binancePort, 0, 0),
    okxPort: int('okxPort', o.okxPort, 0, 0),
    binanceSymbols: symbols('binanceSymbols', o.binanceSymbols, ['BTCUSDT', 'ETHUSDT'], BINANCE_SYMBOL_RE),
    okxSymbols: symbols('okxSymbols', o.okxSymbols, ['BTC-USDT', 'ETH-USDT'], OKX_SYMBOL_RE),
    tradesPerSecond: num('tradesPerSecond', o.tradesPerSecond, 5, 0),
    seed: int('seed', o.seed, 1, -(2 ** 31)),
    firstTradeId: int('firstTradeId', o.firstTradeId, 1_000_000, 0),
    binancePingIntervalMs: int('binancePingIntervalMs', o.binancePingIntervalMs, 20_000, 1),
    binancePongTimeoutMs: int('binancePongTimeoutMs', o.binancePongTimeoutMs, 60_000, 1),
    binanceMaxConnectionAgeMs: int('binanceMaxConnectionAgeMs', o.binanceMaxConnectionAgeMs, 24 * 3600_000, 1),
    binanceInboundPerSecond: int('binanceInboundPerSecond', o.binanceInboundPerSecond, 5, 1),
    binanceHandshakesPer5Min: int('binanceHandshakesPer5Min', o.binanceHandshakesPer5Min, 300, 1),
    binanceWeightPerMinute: int('binanceWeightPerMinute', o.binanceWeightPerMinute, 6000, 1),
    binanceWeightWindowMs: int('binanceWeightWindowMs', o.binanceWeightWindowMs, 60_000, 1),
    binanceBanAfterRejections: int('binanceBanAfterRejections', o.binanceBanAfterRejections, 10, 0),
    binanceMaxUrlLength: int('binanceMaxUrlLength', o.binanceMaxUrlLength, 8004, 64),
    binanceErrorShape: oneOf('binanceErrorShape', o.binanceErrorShape, ['nested', 'flat'] as const),
    okxIdleTimeoutMs: int('okxIdleTimeoutMs', o.okxIdleTimeoutMs, 30_000, 1),
    okxIdleActivity: idleActivity(o.okxIdleActivity),
    okxTradesAllOn: oneOf('okxTradesAllOn', o.okxTradesAllOn, ['business', 'public'] as const),
    okxNumericCodes: o.okxNumericCodes ?? false,
    symbolStates: states(o.symbolStates),
    okxHandshakesPerSecond: int('okxHandshakesPerSecond', o.okxHandshakesPerSecond, 3, 1),
    okxSubscribesPerHour: int('okxSubscribesPerHour', o.okxSubscribesPerHour, 480, 1),
    okxHistoryRequestsPer2s: int('okxHistoryRequestsPer2s', o.okxHistoryRequestsPer2s, 20, 1),
    okxTradesRequestsPer2s: int('okxTradesRequestsPer2s', o.okxTradesRequestsPer2s, 100, 1),
    shutdownCloseDelayMs: int('shutdownCloseDelayMs', o.shutdownCloseDelayMs, 1000, 0),
    noticeCloseDelayMs: int('noticeCloseDelayMs', o.noticeCloseDelayMs, 60_000, 0),
    retryAfterSeconds: int('retryAfterSeconds', o.retryAfterSeconds, 1, 0),
    oversizedBytes: int('oversizedBytes', o.oversizedBytes, 2 * 1024 * 1024, 64),
    maxBufferedBytes: int('maxBufferedBytes', o.maxBufferedBytes, 64 * 1024 * 1024, 1024),
    faultSchedule: schedule(o.faultSchedule),
    tapeRetention: int('tapeRetention', o.tapeRetention, 1_000_000, 1),
    logger: o.logger ?? silentLogger,
  };
}
