/**
 * Compact rows in daily partitions (issue #11).
 *
 * `tick_rows` is partitioned by range on `trade_time`, one partition per UTC day (`tick_rows_YYYYMMDD`). A row is
 * 64 bytes on the heap for realistic ticks (24-byte header + 40 bytes of data) plus 28 bytes in the unique index:
 *   trade_time timestamptz, trade_id bigint           8 + 8
 *   received_at timestamptz                           NULL (free) unless received_delay_ms cannot hold the delay
 *   received_delay_ms smallint                        received_at - trade_time, whole ms within +-32.767 s
 *   instrument_id smallint                            `instruments` row instead of two text columns
 *   flags smallint                                    bit 0: the taker sold (side 'sell'); bit 1: source 'backfill'
 *   price, qty numeric                                exact, with the exchange's scale (trailing zeros kept)
 * Eight columns, so the null bitmap of a row with a NULL still fits in the 24-byte header. Side and source share one
 * smallint for the same reason (two booleans would make nine columns: a 32-byte header on every row).
 *
 * Idempotency: each partition has its own unique index on (instrument_id, trade_id). It omits trade_time, so it is
 * not declared on the parent (PostgreSQL requires the partition key in a parent's unique constraint); `insert ... on
 * conflict do nothing` without a target checks every unique index of the partition the row is routed to. A trade's
 * time never changes, so every copy of a trade is routed to the same partition and meets the first one there.
 *
 * `ticks` becomes a view with the old columns, so SELECTs (the README's, `npm run query`, scripts) keep working; an
 * INSTEAD OF INSERT trigger keeps `insert into ticks (...)` and `copy ticks from stdin` working too (slowly, row by
 * row: the collector writes `tick_rows` directly).
 *
 * Existing rows: the old table is renamed `ticks_legacy`; the view shows it (minus any trade already moved) until
 * src/storage/legacy.ts has moved every row, in chunks, in the background, then `ticks_legacy_finish()` replaces
 * the view with its final form and drops the old table. New ticks go to `tick_rows` from the first second.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/** Whole milliseconds that fit the smallint column, else NULL (then received_at holds the exact time). */
const DELAY_FN = `
create function tick_rows_delay_ms(trade_time timestamptz, received_at timestamptz) returns smallint
language sql immutable as $fn$
  select case when d = trunc(d) and d between -32768 and 32767 then d::smallint end
  from (select extract(epoch from received_at - trade_time) * 1000 as d) s
$fn$`;

/**
 * Creates and attaches the partition of one UTC day if it is missing; true if it created it. The table is created
 * on its own and then ATTACHed: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which neither waits for nor
 * blocks inserts and long reads (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE).
 */
const ENSURE_PARTITION_FN = `
create function tick_rows_ensure_partition(day date) returns boolean language plpgsql as $fn$
declare
  part text := 'tick_rows_' || to_char(day, 'YYYYMMDD');
  rel regclass := to_regclass(quote_ident(part));
begin
  if rel is not null and exists (select 1 from pg_inherits where inhrelid = rel and inhparent = 'tick_rows'::regclass) then
    return false;
  end if;
  perform pg_advisory_xact_lock(461311, day - date '2000-01-01');
  rel := to_regclass(quote_ident(part));
  if rel is not null then
    if exists (select 1 from pg_inherits where inhrelid = rel and inhparent = 'tick_rows'::regclass) then
      return false;
    end if;
    raise exception 'table % exists but is not a partition of tick_rows', part using errcode = '42P07';
  end if;
  execute format('create table %I (like tick_rows including defaults including constraints)', part);
  execute format('create unique index %I on %I (instrument_id, trade_id) with (fillfactor = 100)', part || '_key', part);
  execute format('alter table tick_rows attach partition %I for values from (%L) to (%L)', part,
                 day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
  return true;
end $fn$`;

const VIEW_NEW_ROWS = `
  select i.exchange, i.symbol, t.trade_id, t.price, t.qty,
         case when t.flags & 1 = 1 then 'sell' else 'buy' end as side,
         t.trade_time,
         coalesce(t.received_at, t.trade_time + t.received_delay_ms * interval '1 millisecond') as received_at,
         case when t.flags & 2 = 2 then 'backfill' else 'live' end as source
  from tick_rows t join instruments i on i.instrument_id = t.instrument_id`;

/** While legacy rows remain: both tables; a legacy row already stored in tick_rows (same trade) is shown once. */
const VIEW_WITH_LEGACY = `
create view ticks as ${VIEW_NEW_ROWS}
union all
  select l.exchange, l.symbol, l.trade_id, l.price, l.qty, l.side, l.trade_time, l.received_at, l.source
  from ticks_legacy l
  where not exists (select 1 from instruments i join tick_rows t on t.instrument_id = i.instrument_id
                    where i.exchange = l.exchange and i.symbol = l.symbol
                      and t.trade_id = l.trade_id and t.trade_time = l.trade_time)`;

/** Once ticks_legacy is empty: the final view, then the old table goes. False if there is nothing (left) to do. */
const FINISH_FN = `
create function ticks_legacy_finish() returns boolean language plpgsql as $fn$
begin
  if to_regclass('ticks_legacy') is null then return false; end if;
  lock table ticks_legacy in exclusive mode;
  if exists (select 1 from ticks_legacy) then return false; end if;
  create or replace view ticks as ${VIEW_NEW_ROWS};
  drop table ticks_legacy;
  return true;
end $fn$`;

/** `insert into ticks (...)` for scripts written against the old table: one row at a time into tick_rows. */
const INSERT_TRIGGER_FN = `
create function ticks_insert() returns trigger language plpgsql as $fn$
declare
  iid smallint;
  delay smallint := tick_rows_delay_ms(new.trade_time, new.received_at);
begin
  select instrument_id into iid from instruments where exchange = new.exchange and symbol = new.symbol;
  if iid is null then
    insert into instruments (exchange, symbol) values (new.exchange, new.symbol) on conflict do nothing;
    select instrument_id into iid from instruments where exchange = new.exchange and symbol = new.symbol;
  end if;
  perform tick_rows_ensure_partition((new.trade_time at time zone 'UTC')::date);
  insert into tick_rows (trade_time, trade_id, received_at, received_delay_ms, instrument_id, flags, price, qty)
  values (new.trade_time, new.trade_id, case when delay is null then new.received_at end, delay, iid,
          case new.side when 'buy' then 0 when 'sell' then 1 else -8 end
            + case coalesce(new.source, 'live') when 'live' then 0 when 'backfill' then 2 else -8 end,
          new.price, new.qty)
  on conflict do nothing;
  return new;
end $fn$`;

/** Distinct (exchange, symbol) of the old table by a loose index scan of its primary key (no full scan). */
const LEGACY_INSTRUMENTS = `
insert into instruments (exchange, symbol)
with recursive s as (
  (select exchange, symbol from ticks_legacy order by exchange, symbol limit 1)
  union all
  select n.exchange, n.symbol from s, lateral (
    select exchange, symbol from ticks_legacy t where (t.exchange, t.symbol) > (s.exchange, s.symbol)
    order by exchange, symbol limit 1) n
)
select exchange, symbol from s order by exchange, symbol`;

export async function up(db: Kysely<any>): Promise<void> {
  const run = (text: string) => sql.raw(text).execute(db);
  await run(`create table instruments (
    instrument_id smallint generated by default as identity primary key,
    exchange text not null,
    symbol text not null,
    constraint instruments_exchange_symbol_key unique (exchange, symbol))`);
  await run(`create table tick_rows (
    trade_time timestamptz not null,
    trade_id bigint not null,
    received_at timestamptz,
    received_delay_ms smallint,
    instrument_id smallint not null,
    flags smallint not null,
    price numeric not null,
    qty numeric not null,
    constraint tick_rows_flags_check check (flags between 0 and 3),
    constraint tick_rows_received_check check ((received_at is null) <> (received_delay_ms is null))
  ) partition by range (trade_time)`);
  await run(`create index tick_rows_trade_time_brin on tick_rows using brin (trade_time)`);
  await run(DELAY_FN);
  await run(ENSURE_PARTITION_FN);

  await run(`alter table ticks rename to ticks_legacy`);
  await run(`alter index ticks_pkey rename to ticks_legacy_pkey`);
  await run(`alter index ticks_exchange_symbol_trade_time_idx rename to ticks_legacy_exchange_symbol_trade_time_idx`);
  await run(LEGACY_INSTRUMENTS);

  await run(VIEW_WITH_LEGACY);
  await run(`alter view ticks alter column source set default 'live'`);
  await run(INSERT_TRIGGER_FN);
  await run(`create trigger ticks_insert instead of insert on ticks for each row execute function ticks_insert()`);
  await run(FINISH_FN);
  // A fresh install (or an empty old table): nothing to move, the final view at once.
  await run(`select ticks_legacy_finish()`);
}

export async function down(db: Kysely<any>): Promise<void> {
  const run = (text: string) => sql.raw(text).execute(db);
  const legacy = await sql<{ r: string | null }>`select to_regclass('ticks_legacy')::text as r`.execute(db);
  await run(`create table ticks_old (
    exchange text not null, symbol text not null, trade_id bigint not null, price numeric not null, qty numeric not null,
    side text not null check (side in ('buy', 'sell')), trade_time timestamptz not null, received_at timestamptz not null,
    source text not null default 'live' check (source in ('live', 'backfill')),
    constraint ticks_pkey primary key (exchange, symbol, trade_id))`);
  await run(`insert into ticks_old select * from ticks on conflict do nothing`);
  await run(`drop view ticks`);
  if (legacy.rows[0]?.r) await run(`drop table ticks_legacy`);
  await run(`drop table tick_rows`);
  await run(`drop table instruments`);
  await run(`drop function ticks_insert(), ticks_legacy_finish(), tick_rows_ensure_partition(date), tick_rows_delay_ms(timestamptz, timestamptz)`);
  await run(`alter table ticks_old rename to ticks`);
  await run(`create index ticks_exchange_symbol_trade_time_idx on ticks (exchange, symbol, trade_time)`);
}
