/**
 * Property-based fuzzing of both exchanges' classify() and the REST page mappers (test/helpers/fuzz-properties.ts),
 * a bounded number of cases per property. The long run is `npm run fuzz` (scripts/fuzz.ts).
 */
import { test } from 'node:test';
import { fuzzProperties } from './helpers/fuzz-properties.ts';

const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 150);

for (const p of fuzzProperties()) {
  test(`fuzz: ${p.name} (${NUM_RUNS} cases)`, () => p.run({ numRuns: NUM_RUNS }));
}
