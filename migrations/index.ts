/**
 * Static migration list: every migration is imported here by name, so the Migrator needs no fs globbing and works
 * the same under tsx, compiled output and bundlers. Add new migrations at the end; names sort by timestamp.
 */
import type { Migration } from 'kysely';
import * as createTicks from './20261121T0001_create_ticks.ts';
import * as createGaps from './20261121T0002_create_gaps.ts';
import * as partitionedTicks from './20261122T0001_partitioned_ticks.ts';

export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '20261121T0001_create_ticks': createTicks,
  '20261121T0002_create_gaps': createGaps,
  '20261122T0001_partitioned_ticks': partitionedTicks,
});
