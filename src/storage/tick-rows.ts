/**
 * The writer's ticks while they wait and while they are written: column by column in typed arrays and one byte array
 * (memory outside the JS heap), not as objects. Why: at 20,000 ticks/s the batch being gathered (100 ms) and the one
 * being written outlive two scavenges of the 2 MB young generation, so every buffered Tick object (with its two
 * strings and three boxed numbers) was copied twice and promoted: 8 MB/s into the old space, a mark-compact every
 * second, and scavenges five times as slow as the bare client's. Held here, a tick is a few bytes the garbage
 * collector never visits; the Tick object the mapper made dies young.
 *
 * The batch statement's integer columns are sent as PostgreSQL's binary arrays, built straight from these columns;
 * price and qty (numeric, exact) as one text array literal each. A row whose integers cannot be sent (not whole,
 * outside int8) fails its batch with a `data` StorageError, so the writer isolates and rejects it as it does a row
 * the database refuses.
 *
 * Ticks leave as objects again only on the cold paths: the journal, a rejected row's log line, onStored listeners.
 *
 * Hand-written, not a library: pg serializes only text parameters (a Buffer goes as given, in binary format), and
 * COPY (pg-copy-streams), which has a binary row format, cannot `on conflict do nothing`. The formats written here
 * are PostgreSQL's array_send and numeric_send, checked against the server by the writer tests.
 */
import type { Exchange, Side, Tick, TickSource } from '../tick.ts';
import { StorageError } from './errors.ts';
import type { InstrumentKey } from './instruments.ts';
import { FLAG_BACKFILL, FLAG_SELL } from './schema.ts';

/**
 * The instruments the writer has seen in this run, each a small index (what a row holds). Keyed by what the
 * exchanges (or a journal on disk) send, so bounded: past `max` keys, of() refuses new ones.
 */
export class InstrumentIndex {
  readonly #byExchange = new Map<unknown, Map<unknown, number>>();
  readonly #keys: InstrumentKey[] = [];
  readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get size(): number {
    return this.#keys.length;
  }

  /** The index of (exchange, symbol), added if new; -1 when the index is full. */
  of(exchange: unknown, symbol: unknown): number {
    let bySymbol = this.#byExchange.get(exchange);
    const known = bySymbol?.get(symbol);
    if (known !== undefined) return known;
    if (this.#keys.length >= this.max) return -1;
    if (!bySymbol) this.#byExchange.set(exchange, (bySymbol = new Map()));
    const i = this.#keys.length;
    bySymbol.set(symbol, i);
    this.#keys.push({ exchange: exchange as string, symbol: symbol as string });
    return i;
  }

  key(i: number): InstrumentKey {
    return this.#keys[i]!;
  }
}

/**
 * Side (bits 0-1) and source (bits 2-3) of a row: 0 buy / live, 1 sell / backfill, 2 anything else; bits 4 and 5:
 * the price, the qty is a plain decimal (sent in binary).
 */
const OTHER = 2;
function sideCode(side: unknown): number {
  return side === 'buy' ? 0 : side === 'sell' ? 1 : OTHER;
}
function sourceCode(source: unknown): number {
  return source === 'live' || source === undefined ? 0 : source === 'backfill' ? 1 : OTHER;
}
/** The flags column: bit 0 sold, bit 1 backfilled; a side or source that is neither fails tick_rows_flags_check. */
function flagsOf(code: number): number {
  const side = code & 3;
  const source = (code >> 2) & 3;
  return (side === 0 ? 0 : side === 1 ? FLAG_SELL : -8) + (source === 0 ? 0 : source === 1 ? FLAG_BACKFILL : -8);
}

/** A number field as stored: NaN for anything that is not a number (sent as NULL, like a non-finite number). */
function numberOf(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** The received_at - trade_time delay that fits the smallint column (whole ms within +-32.767 s). */
const MAX_DELAY_MS = 32_767;
const INITIAL_ROWS = 1024;
const INITIAL_TEXT = 16 * 1024;
/** A buffer emptied at a capacity above this starts again small (memory held after a backlog is given back). */
const KEEP_ROWS = 16 * 1024;

const INT8_OID = 20;
const INT2_OID = 21;
const NUMERIC_OID = 1700;
const PRICE_PLAIN = 16;
const QTY_PLAIN = 32;
/** Digits allowed on each side of the point of a plain decimal (DECIMAL_RE in tick.ts). */
const PLAIN_DIGITS = 40;
const TWO_32 = 4_294_967_296;
const INT8_MAX = 9_223_372_036_854_775_807;

/**
 * PostgreSQL's binary array format (array_send): ndim, has-nulls flag, element type, then per dimension its length
 * and lower bound, then per element its byte length (-1 for NULL) and its bytes in network order.
 */
class BinaryArray {
  readonly #buf: Buffer;
  readonly #view: DataView;
  readonly #start: number;
  #at: number;
  #nulls = false;

  /** An array of n elements of type `oid` written into `buf` (through `view`) from byte `start` on. */
  constructor(buf: Buffer, view: DataView, start: number, n: number, oid: number) {
    this.#buf = buf;
    this.#view = view;
    this.#start = start;
    this.#at = start + 20;
    view.setInt32(start, 1);
    view.setInt32(start + 8, oid);
    view.setInt32(start + 12, n);
    view.setInt32(start + 16, 1);
  }

  /** Where the next array can start. */
  get end(): number {
    return this.#at;
  }

  null(): void {
    this.#view.setInt32(this.#at, -1);
    this.#at += 4;
    this.#nulls = true;
  }

  int8(v: number): void {
    const view = this.#view;
    view.setInt32(this.#at, 8);
    if (Number.isSafeInteger(v)) {
      const hi = Math.floor(v / TWO_32);
      view.setInt32(this.#at + 4, hi);
      view.setUint32(this.#at + 8, v - hi * TWO_32);
    } else view.setBigInt64(this.#at + 4, BigInt(v));
    this.#at += 12;
  }

  /**
   * A plain decimal (digits, an optional point and digits, at most 40 each side) as a binary numeric: base-10000
   * digits, the weight of the first, sign, and the display scale (the fraction digits as written, trailing zeros
   * included: "0.00150000" keeps its scale 8).
   */
  numeric(text: Buffer, from: number, len: number, scratch: Int16Array): void {
    const end = from + len;
    let dot = end;
    for (let b = from; b < end; b++) {
      if (text[b] === 0x2e) {
        dot = b;
        break;
      }
    }
    const intLen = dot - from;
    const fracLen = dot < end ? end - dot - 1 : 0;
    let n = 0;
    // Integer part: groups of four digits ending at the point (the first group may be shorter).
    let b = from;
    for (let size = intLen % 4 || 4; b < dot; size = 4) {
      let g = 0;
      for (const stop = b + size; b < stop; b++) g = g * 10 + (text[b]! - 48);
      scratch[n++] = g;
    }
    const intGroups = n;
    // Fraction: groups of four digits from the point, the last one padded with zeros.
    for (b = dot + 1; b < end;) {
      let g = 0;
      let k = 0;
      for (; k < 4 && b < end; k++, b++) g = g * 10 + (text[b]! - 48);
      for (; k < 4; k++) g *= 10;
      scratch[n++] = g;
    }
    let first = 0;
    let weight = intGroups - 1;
    while (first < n && scratch[first] === 0) {
      first++;
      weight--;
    }
    let last = n;
    while (last > first && scratch[last - 1] === 0) last--;
    if (first === last) weight = 0;
    const digits = last - first;
    const view = this.#view;
    let at = this.#at;
    view.setInt32(at, 8 + 2 * digits);
    view.setInt16(at + 4, digits);
    view.setInt16(at + 6, weight);
    view.setInt16(at + 8, 0);
    view.setInt16(at + 10, fracLen);
    at += 12;
    for (let i = first; i < last; i++, at += 2) view.setInt16(at, scratch[i]!);
    this.#at = at;
  }

  int2(v: number): void {
    this.#view.setInt32(this.#at, 2);
    this.#view.setInt16(this.#at + 4, v);
    this.#at += 6;
  }

  done(): Buffer {
    this.#view.setInt32(this.#start + 4, this.#nulls ? 1 : 0);
    return this.#buf.subarray(this.#start, this.#at);
  }
}

/** An int8 value as sent: NULL when not finite (as before: rejected where the column is NOT NULL), else whole. */
function int8(a: BinaryArray, v: number, column: string, row: number): void {
  if (!Number.isFinite(v)) return a.null();
  if (!Number.isInteger(v) || Math.abs(v) > INT8_MAX) {
    throw new StorageError(`${column} ${v} of row ${row} of the batch is not a whole number within int8`, 'data');
  }
  a.int8(v);
}

/** The columns of a TickRows with room for `cap` rows, handed on whole by take() and given back by recycle(). */
interface Columns {
  readonly cap: number;
  readonly seq: Float64Array;
  readonly time: Float64Array;
  readonly id: Float64Array;
  readonly recv: Float64Array;
  readonly inst: Uint16Array;
  readonly code: Uint8Array;
  readonly textAt: Uint32Array;
  readonly priceLen: Int32Array;
  readonly qtyLen: Int32Array;
  readonly text: Buffer;
  /** Where params() writes the batch's binary arrays (reused: pg copies them when it sends the statement). */
  readonly params: Buffer | undefined;
}

function allocateColumns(cap: number, textBytes: number): Columns {
  return {
    cap,
    seq: new Float64Array(cap),
    time: new Float64Array(cap),
    id: new Float64Array(cap),
    recv: new Float64Array(cap),
    inst: new Uint16Array(cap),
    code: new Uint8Array(cap),
    textAt: new Uint32Array(cap),
    priceLen: new Int32Array(cap),
    qtyLen: new Int32Array(cap),
    text: Buffer.allocUnsafe(Math.max(64, textBytes)),
    params: undefined,
  };
}

/**
 * Memory is allocated once and reused: the buffer's columns go with the batch taken from it, and come back as the
 * spare for the next batch when the writer recycles the written one. Fresh ArrayBuffers for every batch (columns,
 * parameters) were 4 MB/s at 20,000 ticks/s; their wrappers outlived a scavenge, so only a mark-compact freed them:
 * one every 1.8 s.
 */
export class TickRows {
  readonly #index: InstrumentIndex;
  /** Rows live in [#head, #end) of every column. */
  #head = 0;
  #end = 0;
  #cap: number;
  #seq!: Float64Array;
  #time!: Float64Array;
  #id!: Float64Array;
  #recv!: Float64Array;
  #inst!: Uint16Array;
  #code!: Uint8Array;
  /** Where the row's price starts in #text; its qty follows the price. Lengths -1 for NULL. */
  #textAt!: Uint32Array;
  #priceLen!: Int32Array;
  #qtyLen!: Int32Array;
  #text!: Buffer;
  #textEnd = 0;
  #params: Buffer | undefined;
  /** Set by #putText: the text it just added is a plain decimal. */
  #plain = false;
  /** Columns given back by recycle(), used by the next take() of everything. */
  #spare: Columns | undefined;

  constructor(index: InstrumentIndex, capacity = INITIAL_ROWS, textBytes = INITIAL_TEXT) {
    this.#index = index;
    this.#cap = Math.max(1, capacity);
    this.#adopt(allocateColumns(this.#cap, textBytes));
  }

  get length(): number {
    return this.#end - this.#head;
  }

  /**
   * Adds a tick; false (nothing added) when its instrument would be one more than the index holds. A number field
   * that is not a number is kept as NULL; a price or qty that is a number is kept as its string, one that is
   * neither text nor a number as NULL (String() of a deep array would overflow the stack). The database then
   * rejects the row with its own reason.
   */
  push(t: Tick, seq: number): boolean {
    const k = this.#index.of(t.exchange, t.symbol);
    if (k < 0) return false;
    if (this.#end === this.#cap) this.#resize(this.length + 1);
    const i = this.#end++;
    this.#seq[i] = seq;
    this.#time[i] = numberOf(t.tradeTime);
    this.#id[i] = numberOf(t.tradeId);
    this.#recv[i] = numberOf(t.receivedAt);
    this.#inst[i] = k;
    this.#code[i] = sideCode(t.side) | (sourceCode(t.source) << 2);
    this.#textAt[i] = this.#textEnd;
    this.#priceLen[i] = this.#putText(t.price);
    if (this.#plain) this.#code[i]! |= PRICE_PLAIN;
    this.#qtyLen[i] = this.#putText(t.qty);
    if (this.#plain) this.#code[i]! |= QTY_PLAIN;
    return true;
  }

  /** Writer sequence number of the first row (the oldest, rows are kept in arrival order). */
  firstSeq(): number {
    return this.length > 0 ? this.#seq[this.#head]! : Number.POSITIVE_INFINITY;
  }

  minSeq(): number {
    let m = Number.POSITIVE_INFINITY;
    for (let i = this.#head; i < this.#end; i++) if (this.#seq[i]! < m) m = this.#seq[i]!;
    return m;
  }

  /** The i-th row as a Tick again (a new object). */
  tick(i: number): Tick {
    const r = this.#head + i;
    const key = this.#index.key(this.#inst[r]!);
    const code = this.#code[r]!;
    const side = code & 3;
    const source = (code >> 2) & 3;
    const at = this.#textAt[r]!;
    const pLen = this.#priceLen[r]!;
    const qAt = at + Math.max(0, pLen);
    const qLen = this.#qtyLen[r]!;
    return {
      exchange: key.exchange as Exchange,
      symbol: key.symbol,
      tradeId: this.#id[r]!,
      price: (pLen < 0 ? undefined : this.#text.toString('utf8', at, at + pLen)) as string,
      qty: (qLen < 0 ? undefined : this.#text.toString('utf8', qAt, qAt + qLen)) as string,
      side: (side === 0 ? 'buy' : side === 1 ? 'sell' : undefined) as Side,
      tradeTime: this.#time[r]!,
      receivedAt: this.#recv[r]!,
      source: (source === 1 ? 'backfill' : source === 0 ? 'live' : undefined) as TickSource,
    };
  }

  ticks(): Tick[] {
    const out = new Array<Tick>(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.tick(i);
    return out;
  }

  /** Every row as { t, s } (tick and sequence number), for the paths that keep objects (journal, overflow). */
  entries(): Array<{ t: Tick; s: number }> {
    const out = new Array<{ t: Tick; s: number }>(this.length);
    for (let i = 0; i < out.length; i++) out[i] = { t: this.tick(i), s: this.#seq[this.#head + i]! };
    return out;
  }

  tradeTimes(): number[] {
    return Array.from(this.#time.subarray(this.#head, this.#end));
  }

  /** The instruments of these rows, each once. */
  instruments(): InstrumentKey[] {
    const seen = new Set<number>();
    for (let i = this.#head; i < this.#end; i++) seen.add(this.#inst[i]!);
    return [...seen].map((k) => this.#index.key(k));
  }

  /** Takes the first n rows out into their own TickRows (all of them when n >= length). */
  take(n: number): TickRows {
    const k = Math.min(Math.max(0, n), this.length);
    if (k === this.length) return this.#moveOut();
    const out = this.slice(0, k);
    this.#head += k;
    return out;
  }

  /** A copy of rows [from, to). */
  slice(from: number, to: number): TickRows {
    const a = this.#head + Math.max(0, from);
    const b = this.#head + Math.min(this.length, to);
    const n = Math.max(0, b - a);
    const textFrom = n > 0 ? this.#textAt[a]! : 0;
    const textTo = n > 0 ? this.#rowTextEnd(b - 1) : 0;
    const out = new TickRows(this.#index, n, textTo - textFrom);
    out.#copyRows(this, a, 0, n);
    this.#text.copy(out.#text, 0, textFrom, textTo);
    for (let i = 0; i < n; i++) out.#textAt[i] = this.#textAt[a + i]! - textFrom;
    out.#end = n;
    out.#textEnd = textTo - textFrom;
    return out;
  }

  /**
   * The rows grouped by instrument (groups in order of first appearance, arrival order kept within each): batches
   * written at once must not interleave their keys (see splitRound in tick-writer.ts).
   */
  groupedByInstrument(): TickRows {
    const n = this.length;
    const groupOf = new Map<number, number>();
    const counts: number[] = [];
    for (let i = this.#head; i < this.#end; i++) {
      const k = this.#inst[i]!;
      let g = groupOf.get(k);
      if (g === undefined) groupOf.set(k, (g = counts.push(0) - 1));
      counts[g]!++;
    }
    const starts: number[] = [];
    let sum = 0;
    for (const c of counts) {
      starts.push(sum);
      sum += c;
    }
    // order[to] = the source row that goes to row `to`; the text is then copied in the new order, so that the
    // text of any run of rows stays contiguous (slice() relies on it).
    const order = new Int32Array(n);
    for (let i = this.#head; i < this.#end; i++) order[starts[groupOf.get(this.#inst[i]!)!]!++] = i;
    const out = new TickRows(this.#index, n, this.#textEnd - (n > 0 ? this.#textAt[this.#head]! : 0));
    for (let to = 0; to < n; to++) {
      const i = order[to]!;
      out.#copyRows(this, i, to, 1);
      const from = this.#textAt[i]!;
      const end = this.#rowTextEnd(i);
      out.#textAt[to] = out.#textEnd;
      this.#text.copy(out.#text, out.#textEnd, from, end);
      out.#textEnd += end - from;
    }
    out.#end = n;
    return out;
  }

  /**
   * The batch statement's eight parameters (tick-writer.ts INSERT_SQL): trade time, trade id, received at (only
   * when the delay does not fit), delay, instrument id, flags as binary arrays; price and qty as binary numerics
   * when every value of the column is a plain decimal, else as a text array literal. `dbId` maps the instrument
   * index to the instruments table's id (every one is registered by then).
   */
  params(dbId: (key: InstrumentKey) => number | undefined): [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer | string, Buffer | string] {
    const n = this.length;
    const ids = new Int32Array(this.#index.size).fill(-1);
    const priceBytes = this.#numericBytes(true);
    const qtyBytes = this.#numericBytes(false);
    // Six integer arrays (header 20 bytes, then 4 + 8 or 4 + 2 bytes an element), then the numerics if plain.
    const bytes = 6 * 20 + n * (3 * 12 + 3 * 6) + (priceBytes < 0 ? 0 : 20 + priceBytes) + (qtyBytes < 0 ? 0 : 20 + qtyBytes);
    if (!this.#params || this.#params.length < bytes) this.#params = Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
    const buf = this.#params;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const t = new BinaryArray(buf, view, 0, n, INT8_OID);
    const id = new BinaryArray(buf, view, 20 + 12 * n, n, INT8_OID);
    const r = new BinaryArray(buf, view, 2 * (20 + 12 * n), n, INT8_OID);
    const d = new BinaryArray(buf, view, 3 * (20 + 12 * n), n, INT2_OID);
    const inst = new BinaryArray(buf, view, 3 * (20 + 12 * n) + 20 + 6 * n, n, INT2_OID);
    const f = new BinaryArray(buf, view, 3 * (20 + 12 * n) + 2 * (20 + 6 * n), n, INT2_OID);
    for (let j = 0; j < n; j++) {
      const i = this.#head + j;
      const time = this.#time[i]!;
      const recv = this.#recv[i]!;
      int8(t, time, 'trade_time', j);
      int8(id, this.#id[i]!, 'trade_id', j);
      const delay = recv - time;
      if (Number.isInteger(delay) && delay >= -MAX_DELAY_MS - 1 && delay <= MAX_DELAY_MS) {
        r.null();
        d.int2(delay);
      } else {
        int8(r, recv, 'received_at', j);
        d.null();
      }
      const k = this.#inst[i]!;
      let dbk = ids[k]!;
      if (dbk < 0) ids[k] = dbk = dbId(this.#index.key(k)) ?? -1;
      if (dbk < 0) throw new StorageError(`instrument of row ${j} of the batch is not registered`, 'data');
      inst.int2(dbk);
      f.int2(flagsOf(this.#code[i]!));
    }
    // The int2 arrays have fixed sizes; the numerics follow the last of them.
    const ints = [t.done(), id.done(), r.done(), d.done(), inst.done(), f.done()] as const;
    const price = priceBytes < 0 ? this.#literal(true) : this.#numerics(true, buf, view, f.end);
    const qty = qtyBytes < 0 ? this.#literal(false) : this.#numerics(false, buf, view, f.end + (priceBytes < 0 ? 0 : 20 + priceBytes));
    return [...ints, price, qty];
  }

  /** The bytes the price or qty column takes as binary numerics (headers excluded); -1 if a value is not plain. */
  #numericBytes(price: boolean): number {
    const flag = price ? PRICE_PLAIN : QTY_PLAIN;
    let bytes = 0;
    for (let i = this.#head; i < this.#end; i++) {
      if ((this.#code[i]! & flag) === 0) return -1;
      // 12 bytes of length and header, then at most len / 4 + 2 base-10000 digits of 2 bytes.
      bytes += 12 + 2 * (((price ? this.#priceLen[i]! : this.#qtyLen[i]!) >> 2) + 2);
    }
    return bytes;
  }

  /** The price or qty column as binary numerics (every value is a plain decimal), written from byte `start`. */
  #numerics(price: boolean, buf: Buffer, view: DataView, start: number): Buffer {
    const a = new BinaryArray(buf, view, start, this.length, NUMERIC_OID);
    const scratch = new Int16Array(2 * (PLAIN_DIGITS / 4) + 2);
    for (let i = this.#head; i < this.#end; i++) {
      const pLen = this.#priceLen[i]!;
      if (price) a.numeric(this.#text, this.#textAt[i]!, pLen, scratch);
      else a.numeric(this.#text, this.#textAt[i]! + pLen, this.#qtyLen[i]!, scratch);
    }
    return a.done();
  }

  /** `{"1.5","2",NULL,...}`: every element double-quoted, `"` and `\` escaped, so no value can add or split one. */
  #literal(price: boolean): string {
    let bytes = 2;
    for (let i = this.#head; i < this.#end; i++) {
      const len = price ? this.#priceLen[i]! : this.#qtyLen[i]!;
      bytes += len < 0 ? 5 : 2 * len + 3;
    }
    const out = Buffer.allocUnsafe(bytes);
    const text = this.#text;
    let p = 0;
    out[p++] = 0x7b; // {
    for (let i = this.#head; i < this.#end; i++) {
      if (i > this.#head) out[p++] = 0x2c; // ,
      const pLen = this.#priceLen[i]!;
      const len = price ? pLen : this.#qtyLen[i]!;
      if (len < 0) {
        out[p++] = 0x4e; // N
        out[p++] = 0x55; // U
        out[p++] = 0x4c; // L
        out[p++] = 0x4c; // L
        continue;
      }
      const from = this.#textAt[i]! + (price ? 0 : Math.max(0, pLen));
      out[p++] = 0x22;
      for (let b = from; b < from + len; b++) {
        const c = text[b]!;
        if (c === 0x22 || c === 0x5c) out[p++] = 0x5c;
        out[p++] = c;
      }
      out[p++] = 0x22;
    }
    out[p++] = 0x7d; // }
    return out.toString('utf8', 0, p);
  }

  /** Where row r's text (price, then qty) ends in #text. */
  #rowTextEnd(r: number): number {
    return this.#textAt[r]! + Math.max(0, this.#priceLen[r]!) + Math.max(0, this.#qtyLen[r]!);
  }

  /** The string's UTF-8 bytes appended to #text; its length, or -1 for a value that is not text (NULL). */
  #putText(v: unknown): number {
    let s: string;
    if (typeof v === 'string') s = v;
    else if (typeof v === 'number' || typeof v === 'bigint') s = String(v);
    else {
      this.#plain = false;
      return -1;
    }
    if (this.#textEnd + s.length * 3 > this.#text.length) this.#growText(s.length * 3);
    const at = this.#textEnd; // after growing: the text may have moved
    const text = this.#text;
    let p = at;
    // Plain decimal: 1-40 digits, then optionally a point and 1-40 digits (as the mappers check: DECIMAL_RE).
    let digits = 0;
    let dot = -1;
    let plain = s.length > 0;
    for (let j = 0; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c >= 0x80) {
        p = at + text.write(s, at, 'utf8');
        plain = false;
        break;
      }
      text[p++] = c;
      if (c >= 48 && c <= 57) {
        if (++digits > PLAIN_DIGITS) plain = false;
      } else if (c === 0x2e && dot < 0 && digits > 0) {
        dot = j;
        digits = 0;
      } else plain = false;
    }
    this.#plain = plain && digits > 0;
    this.#textEnd = p;
    return p - at;
  }

  /** A bigger text array holding only the live rows' text (rows before #head are gone). */
  #growText(need: number): void {
    const from = this.length > 0 ? this.#textAt[this.#head]! : this.#textEnd;
    const live = this.#textEnd - from;
    const next = Buffer.allocUnsafe(Math.max(INITIAL_TEXT, 2 * (live + need)));
    this.#text.copy(next, 0, from, this.#textEnd);
    // Rebases every live row, the one being pushed included (its text started at the old end).
    for (let i = this.#head; i < this.#end; i++) this.#textAt[i]! -= from;
    this.#text = next;
    this.#textEnd = live;
  }

  /** Columns with room for at least `rows` rows (doubling), the live rows moved to the start. */
  #resize(rows: number): void {
    const old = this.#columns();
    const n = this.length;
    const head = this.#head;
    let cap = Math.max(1, this.#cap);
    while (cap < rows || cap < 2 * n) cap *= 2;
    // A recycled TickRows has EMPTY's columns: it gets a text array of its own.
    this.#adopt({ ...allocateColumns(cap, 0), text: old.text === EMPTY.text ? Buffer.allocUnsafe(INITIAL_TEXT) : old.text, params: old.params });
    this.#setRows(old, head, 0, n);
    this.#head = 0;
    this.#end = n;
  }

  #columns(): Columns {
    return {
      cap: this.#cap, seq: this.#seq, time: this.#time, id: this.#id, recv: this.#recv, inst: this.#inst, code: this.#code,
      textAt: this.#textAt, priceLen: this.#priceLen, qtyLen: this.#qtyLen, text: this.#text, params: this.#params,
    };
  }

  #adopt(c: Columns): void {
    this.#cap = c.cap;
    this.#seq = c.seq;
    this.#time = c.time;
    this.#id = c.id;
    this.#recv = c.recv;
    this.#inst = c.inst;
    this.#code = c.code;
    this.#textAt = c.textAt;
    this.#priceLen = c.priceLen;
    this.#qtyLen = c.qtyLen;
    this.#text = c.text;
    this.#params = c.params;
  }

  /**
   * Takes back the columns of a batch that is done with (written, or rejected row by row): the next take() of
   * everything hands them on instead of allocating new ones. `rows` is left empty, with no columns of its own.
   */
  recycle(rows: TickRows): void {
    if (rows === this) return;
    const c = rows.#columns();
    rows.#adopt(EMPTY);
    rows.#head = rows.#end = rows.#textEnd = 0;
    if (c.cap <= KEEP_ROWS && (!this.#spare || this.#spare.cap < c.cap)) this.#spare = c;
  }

  /**
   * Copies n rows' fixed columns from src row `from` to this row `to`. Text offsets are copied as they are (the
   * callers that move text set them); one row at a time without the subarray views, for groupedByInstrument.
   */
  #copyRows(src: TickRows, from: number, to: number, n: number): void {
    if (n === 1) {
      this.#seq[to] = src.#seq[from]!;
      this.#time[to] = src.#time[from]!;
      this.#id[to] = src.#id[from]!;
      this.#recv[to] = src.#recv[from]!;
      this.#inst[to] = src.#inst[from]!;
      this.#code[to] = src.#code[from]!;
      this.#priceLen[to] = src.#priceLen[from]!;
      this.#qtyLen[to] = src.#qtyLen[from]!;
      return;
    }
    this.#setRows(src.#columns(), from, to, n);
  }

  /** Copies n rows of every column of `src` from row `from` to this row `to`. */
  #setRows(src: Columns, from: number, to: number, n: number): void {
    this.#seq.set(src.seq.subarray(from, from + n), to);
    this.#time.set(src.time.subarray(from, from + n), to);
    this.#id.set(src.id.subarray(from, from + n), to);
    this.#recv.set(src.recv.subarray(from, from + n), to);
    this.#inst.set(src.inst.subarray(from, from + n), to);
    this.#code.set(src.code.subarray(from, from + n), to);
    this.#textAt.set(src.textAt.subarray(from, from + n), to);
    this.#priceLen.set(src.priceLen.subarray(from, from + n), to);
    this.#qtyLen.set(src.qtyLen.subarray(from, from + n), to);
  }

  /** All rows handed to a new TickRows (its columns are these); this one starts again empty (the spare, if any). */
  #moveOut(): TickRows {
    const out = new TickRows(this.#index, 0, 0);
    out.#adopt(this.#columns());
    out.#head = this.#head;
    out.#end = this.#end;
    out.#textEnd = this.#textEnd;
    const cap = this.#cap > KEEP_ROWS ? INITIAL_ROWS : this.#cap;
    const spare = this.#spare;
    this.#spare = undefined;
    this.#adopt(spare && spare.cap >= cap ? spare : allocateColumns(cap, Math.max(INITIAL_TEXT, Math.min(out.#text.length, 64 * cap))));
    this.#head = 0;
    this.#end = 0;
    this.#textEnd = 0;
    return out;
  }
}

/** The columns of a recycled TickRows: none (a push would allocate). */
const EMPTY: Columns = allocateColumns(0, 0);
