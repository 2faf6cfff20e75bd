/** Field checks shared by the exchange mappers. Each returns a Rejection naming the field, or the clean value. */
import type { Rejection } from '../connection/feed.ts';
import { DECIMAL_RE } from '../tick.ts';
import type { Tick } from '../tick.ts';
import { describe, isRecord, typeName } from '../describe-value.ts';

export { describe, isRecord, preview, typeName } from '../describe-value.ts';

export type Checked<T> = { ok: true; value: T } | { ok: false; rejection: Rejection };

/** What a mapper makes of one raw trade: a tick, or the rejection naming the bad field. */
export type TradeMapping = { ok: true; tick: Tick } | { ok: false; rejection: Rejection };

/** What a mapper makes of one REST page: its valid ticks and why the others were refused, or why it is no page. */
export type PageMapping = { ok: true; ticks: Tick[]; rejects: Rejection[] } | { ok: false; detail: string };

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const fail = <T>(kind: Rejection['kind'], detail: string): Checked<T> => ({ ok: false, rejection: { kind, detail } });

function present(obj: Record<string, unknown>, field: string): Checked<unknown> {
  return field in obj && obj[field] !== undefined && obj[field] !== null
    ? ok(obj[field])
    : fail('missing_field', `missing field "${field}"`);
}

export function nonEmptyString(obj: Record<string, unknown>, field: string): Checked<string> {
  const v = present(obj, field);
  if (!v.ok) return v;
  return typeof v.value === 'string' && v.value.length > 0 ? ok(v.value) : fail('bad_type', `field "${field}" is ${describe(v.value)}, expected a non-empty string`);
}

const NONZERO_RE = /[1-9]/;
const DIGITS_RE = /^\d{1,16}$/;

/**
 * The predicates the checks below apply, also used alone by the mappers' fast paths: a frame whose every field
 * passes them maps without building a result object per field (the checks' reason strings are only for failures).
 */
export function isPositiveDecimal(v: unknown): v is string {
  return typeof v === 'string' && DECIMAL_RE.test(v) && NONZERO_RE.test(v);
}

export function isSafeUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A string of at most 16 digits whose value is a safe integer: that value, or -1. */
export function digitsValue(v: unknown): number {
  if (typeof v !== 'string' || !DIGITS_RE.test(v)) return -1;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : -1;
}

/** A positive exact decimal string (price, quantity). Zero, negative, exponent and non-numeric forms are refused. */
export function positiveDecimal(obj: Record<string, unknown>, field: string): Checked<string> {
  const v = present(obj, field);
  if (!v.ok) return v;
  if (isPositiveDecimal(v.value)) return ok(v.value);
  if (typeof v.value !== 'string') return fail('bad_type', `field "${field}" is ${typeName(v.value)}, expected a decimal string`);
  if (!DECIMAL_RE.test(v.value)) return fail('bad_number', `field "${field}" is not a non-negative decimal: ${describe(v.value)}`);
  return fail('bad_number', `field "${field}" is zero`);
}

/** A non-negative safe integer given as a JSON number (`asString` false) or a string of digits (`asString` true). */
export function safeInteger(obj: Record<string, unknown>, field: string, asString: boolean): Checked<number> {
  const v = present(obj, field);
  if (!v.ok) return v;
  if (asString) {
    if (typeof v.value !== 'string') return fail('bad_type', `field "${field}" is ${typeName(v.value)}, expected a string of digits`);
    if (!DIGITS_RE.test(v.value)) return fail('bad_number', `field "${field}" is not a whole number: ${describe(v.value)}`);
  } else if (typeof v.value !== 'number') {
    return fail('bad_type', `field "${field}" is ${typeName(v.value)}, expected a number`);
  }
  const n = Number(v.value);
  return Number.isSafeInteger(n) && n >= 0 ? ok(n) : fail('bad_number', `field "${field}" is not a non-negative safe integer: ${describe(v.value)}`);
}

/** Trade times before this are not real exchange trades (2010-01-01). */
const MIN_TRADE_TIME_MS = 1_262_304_000_000;
/** Clocks differ, but not by a day. */
const MAX_CLOCK_SKEW_MS = 86_400_000;

/** The predicate of epochMillis, for the mappers' fast paths. */
export function plausibleMillis(ms: number, receivedAt: number): boolean {
  return ms >= MIN_TRADE_TIME_MS && ms <= receivedAt + MAX_CLOCK_SKEW_MS;
}

/**
 * A trade time in epoch milliseconds, plausible against the time the frame was received: a value in microseconds
 * (Binance `timeUnit=MICROSECOND`, 1,000 times too large) or in seconds is refused, never stored as milliseconds.
 */
export function epochMillis(obj: Record<string, unknown>, field: string, asString: boolean, receivedAt: number): Checked<number> {
  const v = safeInteger(obj, field, asString);
  if (!v.ok) return v;
  if (!plausibleMillis(v.value, receivedAt)) {
    return fail('bad_number', `field "${field}" is ${v.value}: not a time in milliseconds near ${receivedAt} (microseconds or seconds?)`);
  }
  return v;
}

export function boolean(obj: Record<string, unknown>, field: string): Checked<boolean> {
  const v = present(obj, field);
  if (!v.ok) return v;
  return typeof v.value === 'boolean' ? ok(v.value) : fail('bad_type', `field "${field}" is ${typeName(v.value)}, expected a boolean`);
}

export function oneOf<T extends string>(obj: Record<string, unknown>, field: string, allowed: readonly T[]): Checked<T> {
  const v = nonEmptyString(obj, field);
  if (!v.ok) return v;
  return (allowed as readonly string[]).includes(v.value) ? ok(v.value as T) : fail('bad_type', `field "${field}" is ${describe(v.value, 20)}, expected one of ${allowed.join(', ')}`);
}

/** Parses a frame as JSON; a parse failure is an `invalid_json` rejection. */
export function parseJson(text: string): Checked<unknown> {
  try {
    return ok(JSON.parse(text));
  } catch (err) {
    return fail('invalid_json', `invalid JSON: ${(err as Error).message.slice(0, 100)}`);
  }
}
