/**
 * `npm run fuzz [-- --runs N] [--seed S]`: the fuzz properties of test/fuzz-mappers.test.ts with many more cases
 * (default 20,000 per property). Prints one line per property with its time, and fast-check's report (seed, path
 * and the shrunk counterexample, first 2,000 characters) for any that fails; exits 1 if one did.
 */
import { fuzzProperties } from '../test/helpers/fuzz-properties.ts';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v)) {
    console.error(`--${name} expects an integer, got ${JSON.stringify(process.argv[i + 1])}`);
    process.exit(2);
  }
  return v;
}

const numRuns = arg('runs') ?? 20_000;
const seed = arg('seed');
let failed = 0;
const started = Date.now();
for (const p of fuzzProperties()) {
  const t0 = Date.now();
  try {
    p.run({ numRuns, ...(seed !== undefined ? { seed } : {}) });
    console.log(`ok    ${p.name}: ${numRuns} cases in ${Date.now() - t0} ms`);
  } catch (err) {
    failed++;
    console.log(`FAIL  ${p.name}: ${(err as Error).message.slice(0, 2_000)}`);
  }
}
console.log(`${failed === 0 ? 'all passed' : `${failed} failed`}: ${numRuns} cases per property${seed !== undefined ? `, seed ${seed}` : ''}, ${Date.now() - started} ms`);
process.exit(failed === 0 ? 0 : 1);
