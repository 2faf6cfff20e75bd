/**
 * `.env` in the working directory, read once at start (Node's own parser, util.parseEnv: the `--env-file` syntax).
 * The process environment wins: a variable set in both keeps its environment value. No file: nothing happens.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import util from 'node:util';

export interface EnvFileResult {
  /** Absolute path of the file read; null when there is none. */
  readonly path: string | null;
  /** Variables taken from the file. */
  readonly applied: readonly string[];
  /** Variables in the file that the environment already set (the environment wins). */
  readonly overridden: readonly string[];
  /** Why the file could not be read, if it exists but could not be. */
  readonly error?: string;
}

export const ENV_FILE = '.env';

export function applyEnvFile(env: NodeJS.ProcessEnv = process.env, file = ENV_FILE): EnvFileResult {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { path: null, applied: [], overridden: [] };
    return { path, applied: [], overridden: [], error: (err as Error).message };
  }
  const parseEnv = (util as { parseEnv?: (content: string) => Record<string, string> }).parseEnv;
  if (!parseEnv) return { path, applied: [], overridden: [], error: `this Node (${process.version}) cannot parse .env files; Node 20.12 or later can` };
  const applied: string[] = [];
  const overridden: string[] = [];
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (env[key] !== undefined) overridden.push(key);
    else {
      env[key] = value;
      applied.push(key);
    }
  }
  return { path, applied, overridden };
}
