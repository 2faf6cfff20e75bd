import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('ticks')
    .addColumn('exchange', 'text', (c) => c.notNull())
    .addColumn('symbol', 'text', (c) => c.notNull())
    .addColumn('trade_id', 'bigint', (c) => c.notNull())
    .addColumn('price', 'numeric', (c) => c.notNull())
    .addColumn('qty', 'numeric', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull().check(sql`side in ('buy', 'sell')`))
    .addColumn('trade_time', 'timestamptz', (c) => c.notNull())
    .addColumn('received_at', 'timestamptz', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('live').check(sql`source in ('live', 'backfill')`))
    .addPrimaryKeyConstraint('ticks_pkey', ['exchange', 'symbol', 'trade_id'])
    .execute();
  await db.schema.createIndex('ticks_exchange_symbol_trade_time_idx').on('ticks').columns(['exchange', 'symbol', 'trade_time']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ticks').execute();
}
