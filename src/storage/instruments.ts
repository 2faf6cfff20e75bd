/**
 * The `instruments` table in memory: (exchange, symbol) -> the small integer each row of `tick_rows` carries. Loaded
 * once; an instrument the writer has not seen yet (a new symbol, a journal from an earlier configuration) is
 * registered in the table on first use. The table is bounded: past MAX_INSTRUMENTS nothing new is registered.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { StorageError } from './errors.ts';
import type { Database } from './schema.ts';

/** Far above any configuration (the top 50 pairs on both exchanges is 100), well inside smallint. */
export const MAX_INSTRUMENTS = 10_000;

export interface InstrumentKey {
  readonly exchange: string;
  readonly symbol: string;
}

export class Instruments {
  readonly #db: Kysely<Database>;
  readonly #ids = new Map<string, Map<string, number>>();
  #count = 0;

  private constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  static async load(db: Kysely<Database>): Promise<Instruments> {
    const instruments = new Instruments(db);
    await instruments.#reload();
    return instruments;
  }

  /** The id of a registered instrument; undefined if it is not registered yet. O(1), no allocation. */
  id(exchange: string, symbol: string): number | undefined {
    return this.#ids.get(exchange)?.get(symbol);
  }

  get size(): number {
    return this.#count;
  }

  /**
   * Registers the instruments not known yet. Throws StorageError kind `data` naming the first one that cannot be
   * registered (the table is full), so the writer isolates and rejects its ticks and stores the rest.
   */
  async register(keys: readonly InstrumentKey[]): Promise<void> {
    const missing = new Map<string, InstrumentKey>();
    for (const k of keys) if (this.id(k.exchange, k.symbol) === undefined) missing.set(`${k.exchange}\u0000${k.symbol}`, k);
    if (missing.size === 0) return;
    const list = [...missing.values()];
    await sql`
      insert into instruments (exchange, symbol)
      select e, s from unnest(${list.map((k) => k.exchange)}::text[], ${list.map((k) => k.symbol)}::text[]) as u(e, s)
      where (select count(*) from instruments) < ${MAX_INSTRUMENTS}
      on conflict do nothing`.execute(this.#db);
    await this.#reload();
    const refused = list.find((k) => this.id(k.exchange, k.symbol) === undefined);
    if (refused) {
      throw new StorageError(
        `instrument ${refused.exchange} ${JSON.stringify(refused.symbol)} not registered: the instruments table holds its maximum of ${MAX_INSTRUMENTS}`,
        'data',
      );
    }
  }

  async #reload(): Promise<void> {
    const rows = await this.#db.selectFrom('instruments').select(['instrument_id', 'exchange', 'symbol']).execute();
    this.#ids.clear();
    for (const r of rows) {
      let bySymbol = this.#ids.get(r.exchange);
      if (!bySymbol) this.#ids.set(r.exchange, (bySymbol = new Map()));
      bySymbol.set(r.symbol, Number(r.instrument_id));
    }
    this.#count = rows.length;
  }
}
