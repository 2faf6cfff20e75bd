#!/usr/bin/env node
/**
 * `npm run build` (also run by `npm ci` through `prepare`, and by `npm start` / the CLIs when dist/ is stale):
 * compiles src/, migrations/ and the demo to dist/ with the TypeScript compiler, `--noCheck` so the build needs no
 * type packages: type checking is `npm run typecheck` (CI runs it), the build only strips types. TypeScript is a
 * runtime dependency for this (31 MB; the build takes about a second); see README "Install for production".
 *
 *   node scripts/build.mjs             build now
 *   node scripts/build.mjs --if-stale  build only if a source file is newer than the last build
 * Plain JavaScript on purpose: it runs before anything is compiled, without dev dependencies.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const STAMP = join(ROOT, 'dist', '.build-stamp');
const SOURCES = ['src', 'migrations', 'scripts/demo.ts', 'tsconfig.json', 'tsconfig.build.json'];

function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const name of readdirSync(path)) max = Math.max(max, newest(join(path, name)));
  return max;
}

/** True when dist/ is missing or older than a source file. */
export function isStale() {
  let built;
  try {
    built = statSync(STAMP).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((s) => newest(join(ROOT, s)) > built);
}

export function build() {
  const require = createRequire(join(ROOT, 'package.json'));
  let tsc;
  try {
    tsc = join(dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
  } catch {
    throw new Error('the TypeScript compiler is not installed: run `npm ci` (or `npm ci --omit=dev`) in the project first');
  }
  try {
    // tsc reports on stdout: send it to stderr so a CLI's own output stays clean
    execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--noCheck'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  } catch {
    throw new Error('the build failed (tsc -p tsconfig.build.json --noCheck): see the messages above');
  }
  mkdirSync(dirname(STAMP), { recursive: true });
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

export function buildIfStale() {
  if (!isStale()) return false;
  try {
    build();
  } catch (err) {
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    if (e.code === 'EACCES' || e.code === 'EROFS' || e.code === 'EPERM') {
      throw new Error(`dist/ is older than the sources and cannot be rebuilt here (${e.code}): run \`npm run build\` as the owner of ${ROOT}`);
    }
    throw err;
  }
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    if (process.argv.includes('--if-stale')) buildIfStale();
    else build();
  } catch (err) {
    process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
