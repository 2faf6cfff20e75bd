import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('gaps')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('exchange', 'text', (c) => c.notNull())
    .addColumn('symbol', 'text', (c) => c.notNull())
    .addColumn('from_id', 'bigint', (c) => c.notNull())
    .addColumn('to_id', 'bigint', (c) => c.notNull())
    .addColumn('detected_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('open').check(sql`status in ('open', 'filled', 'unfillable')`))
    .addColumn('reason', 'text')
    .addColumn('filled_at', 'timestamptz')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_attempt_at', 'timestamptz')
    .addUniqueConstraint('gaps_exchange_symbol_range_key', ['exchange', 'symbol', 'from_id', 'to_id'])
    .execute();
  await db.schema.createIndex('gaps_status_idx').on('gaps').columns(['status', 'exchange', 'symbol']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('gaps').execute();
}
