#!/usr/bin/env node
/**
 * Runs any entry point of the project compiled, with plain node (no tsx, no dev dependencies):
 *   node scripts/run.mjs src/cli/query.ts --latest 10    →  node dist/src/cli/query.js --latest 10
 * It rebuilds dist/ first if a source is newer than the last build (about a second), so `npm run <cli>` always
 * runs the current code. Every file under src/ (and scripts/demo.ts) is compiled, so a new CLI under src/cli/
 * only needs its package.json script: "name": "node scripts/run.mjs src/cli/name.ts".
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, buildIfStale } from './build.mjs';

const [entry, ...args] = process.argv.slice(2);
if (!entry || !entry.endsWith('.ts')) {
  process.stderr.write('usage: node scripts/run.mjs <path/to/entry.ts> [args...]\n');
  process.exit(2);
}
try {
  buildIfStale();
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
const compiled = join(ROOT, 'dist', entry.replace(/\.ts$/, '.js'));
if (!existsSync(compiled)) {
  process.stderr.write(`no compiled ${compiled} for ${entry} (is it under src/?)\n`);
  process.exit(2);
}
// The entry sees the argv it would see if started directly: [node, its own path, ...args].
process.argv = [process.argv[0], compiled, ...args];
await import(pathToFileURL(compiled).href);
