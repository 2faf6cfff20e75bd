/**
 * The exchanges' public instrument lists (Binance `GET /api/v3/exchangeInfo`, OKX `GET /api/v5/public/instruments`),
 * behind one small interface. Used twice: at start, to refuse configured symbols the exchange does not list (a warning
 * only while it cannot be reached, never a long wait), and when OKX refuses a subscription with 60018, to tell an
 * unknown instrument from a wrong URL or channel.
 */
import { ConfigError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Exchange } from '../tick.ts';

/** Symbol -> the exchange's state for it (`TRADING`, `BREAK`, `live`, `suspend`...). A symbol not in it is not listed. */
export type InstrumentStates = ReadonlyMap<string, string>;

export interface InstrumentLookup {
  readonly exchange: Exchange;
  /** The endpoint asked, for messages (`GET https://api.binance.com/api/v3/exchangeInfo`). */
  readonly endpoint: string;
  /** The state the exchange gives each trading state (`TRADING`, `live`). */
  readonly tradingState: string;
  /** States of those of `symbols` the exchange lists. Rejects when the exchange cannot be reached or answers nonsense. */
  states(symbols: readonly string[], signal?: AbortSignal): Promise<InstrumentStates>;
}

export type SymbolVerdict =
  | { readonly kind: 'listed'; readonly state: string }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'unreachable'; readonly detail: string };

/** One lookup, never throwing: what the exchange says about each symbol, or why it could not say. */
export async function judgeSymbols(lookup: InstrumentLookup, symbols: readonly string[], timeoutMs: number): Promise<Map<string, SymbolVerdict>> {
  const out = new Map<string, SymbolVerdict>();
  try {
    const states = await lookup.states(symbols, AbortSignal.timeout(timeoutMs));
    for (const s of symbols) {
      const state = states.get(s);
      out.set(s, state === undefined ? { kind: 'unknown' } : { kind: 'listed', state });
    }
  } catch (err) {
    const detail = errorText(err, timeoutMs);
    for (const s of symbols) out.set(s, { kind: 'unreachable', detail });
  }
  return out;
}

/** A short sample of a parsed answer for a message; never throws (a hostile 10,000-deep array breaks stringify). */
export function answerSample(body: unknown, max = 200): string {
  try {
    return (JSON.stringify(body) ?? String(body)).slice(0, max);
  } catch {
    return `<unprintable ${typeof body}>`;
  }
}

function errorText(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? cause.message : '';
    return causeText && !err.message.includes(causeText) ? `${err.message}: ${causeText}` : err.message;
  }
  return String(err);
}

export interface StartupCheck {
  readonly lookup: InstrumentLookup;
  /** The variable the symbols came from, for the error (`BINANCE_SYMBOLS`). */
  readonly variable: string;
  readonly symbols: readonly string[];
}

/**
 * Checks every configured symbol against its exchange's list, all exchanges at once, each bounded by `timeoutMs`.
 * Throws ConfigError naming the symbols an exchange does not list; warns for listed symbols that are not trading
 * and, without waiting any longer, for an exchange that cannot be reached (the collector starts anyway).
 */
export async function checkSymbolsAtStart(checks: readonly StartupCheck[], timeoutMs: number, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'instruments' });
  const errors: ConfigError[] = [];
  await Promise.all(
    checks.map(async ({ lookup, variable, symbols }) => {
      if (symbols.length === 0) return;
      const verdicts = await judgeSymbols(lookup, symbols, timeoutMs);
      const unknown = symbols.filter((s) => verdicts.get(s)?.kind === 'unknown');
      const unreachable = [...verdicts.values()].find((v) => v.kind === 'unreachable');
      if (unreachable?.kind === 'unreachable') {
        log.warn({ exchange: lookup.exchange, endpoint: lookup.endpoint, detail: unreachable.detail }, `could not check ${variable} against ${lookup.endpoint} (${unreachable.detail}): starting without the check`);
        return;
      }
      for (const s of symbols) {
        const v = verdicts.get(s);
        if (v?.kind === 'listed' && v.state !== lookup.tradingState) {
          log.warn({ exchange: lookup.exchange, symbol: s, state: v.state }, `${s} is listed with state ${v.state}, not ${lookup.tradingState}: no trades will arrive until it trades again`);
        }
      }
      if (unknown.length > 0) {
        errors.push(new ConfigError(variable, `symbols that ${lookup.endpoint} lists (not listed: ${unknown.join(', ')}; symbols are case-sensitive)`, symbols.join(',')));
      } else {
        log.info({ exchange: lookup.exchange, endpoint: lookup.endpoint, symbols: symbols.length }, `every ${variable} symbol is listed`);
      }
    }),
  );
  for (const e of errors.slice(1)) log.error({ err: e }, e.message);
  if (errors.length > 0) throw errors[0]!;
}
