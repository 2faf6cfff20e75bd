/**
 * Trade frames read without JSON.parse: the exchanges serialize a trade frame the same way every time (fixed key
 * order, no whitespace), so one anchored regular expression per frame shape reads its fields. `npm run bench:parse`
 * on the 2-core bench machine: 0.42 µs per Binance frame against 1.14 µs for JSON.parse and the mapper's field
 * checks, 0.62 against 1.65 µs per OKX frame (2026-12-03; the ratio, 0.37-0.45, held over runs that a busy machine
 * slowed by half). JSON.parse builds every key string
 * and an object per frame that the collector drops at once.
 *
 * The rule that keeps this safe: a template only ever says "this is exactly that tick" or "not mine". It accepts a
 * frame only when JSON.parse would accept it and the mapper's own checks would pass, and then it returns the tick
 * the slow path would return, field for field (test/frame-templates.test.ts checks both claims on generated and on
 * mutated frames). Anything else - another key order, an extra field, whitespace, an escape, a number JSON spells
 * otherwise, a field the mapper would refuse - goes to the slow path, which parses, validates and names the problem.
 *
 * The pieces below are JSON grammar, narrowed: where JSON allows more (exponents, escapes) the template declines.
 */
import type { Exchange, Side, Tick } from '../tick.ts';
import { plausibleMillis } from './validate.ts';

/** A JSON integer literal of 1 to 16 digits: no sign, no leading zero (JSON forbids one), no fraction. */
export const JSON_UINT = '(?:0|[1-9][0-9]{0,15})';
/** The contents of a decimal string the mapper accepts (tick.ts DECIMAL_RE; zero is checked after the match). */
export const DECIMAL = '[0-9]{1,40}(?:\\.[0-9]{1,40})?';
/** A string of 1 to 16 digits (OKX sends ids and times as strings; the mapper allows leading zeros there). */
export const DIGITS = '[0-9]{1,16}';

const NONZERO_RE = /[1-9]/;
/** V8 makes a substring of 13 characters or more a slice that keeps its whole parent string alive. */
const SLICE_MIN_CHARS = 13;

/**
 * A matched field as a string of its own. A capture of 13 characters or more is a slice of the frame, and a tick
 * waiting in the writer's buffer (up to MAX_BUFFERED_TICKS of them while the database is down) would keep its whole
 * frame alive: 100,000 Binance prices held 25 MB of heap as slices, 10 MB copied this way, 7 MB from JSON.parse.
 * Slicing a concatenation flattens it first, so the copy's parent is only one character longer than itself.
 */
function own(field: string): string {
  return field.length < SLICE_MIN_CHARS ? field : (' ' + field).slice(1);
}

/** A decimal the mapper accepts as a price or quantity: the match's shape, and not zero. */
function positive(decimal: string): boolean {
  return NONZERO_RE.test(decimal);
}

/** The safe integer a matched digit run spells, or -1 (16 digits can exceed 2^53 - 1). */
function safeValue(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : -1;
}

/** A trade time the mapper accepts: a safe integer in milliseconds, near the time the frame was received. */
function tradeTimeValue(digits: string, receivedAt: number): number {
  const n = safeValue(digits);
  return n >= 0 && plausibleMillis(n, receivedAt) ? n : -1;
}

/**
 * The live tick a template's captures spell, checked as the mapper checks (a safe id, a plausible time in ms, a
 * price and quantity that are not zero), or null for the general path to name what is wrong.
 */
export function matchedTick(exchange: Exchange, symbol: string, id: string, price: string, qty: string, side: Side, time: string, receivedAt: number): Tick | null {
  const tradeId = safeValue(id);
  const tradeTime = tradeTimeValue(time, receivedAt);
  if (tradeId < 0 || tradeTime < 0 || !positive(price) || !positive(qty)) return null;
  return { exchange, symbol: own(symbol), tradeId, price: own(price), qty: own(qty), side, tradeTime, receivedAt, source: 'live' };
}
