/** Flag parsing shared by the CLIs: `--flag value` or `--flag=value`, each at most once, unknown flags refused. */
import { UsageError } from '../storage/cli-support.ts';

export interface Flags {
  readonly values: ReadonlyMap<string, string>;
  readonly bools: ReadonlySet<string>;
}

export function parseFlags(argv: readonly string[], valueFlags: ReadonlySet<string>, boolFlags: ReadonlySet<string>): Flags {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    if (boolFlags.has(flag)) {
      bools.add(flag);
      continue;
    }
    if (!valueFlags.has(flag)) throw new UsageError(`unknown argument ${JSON.stringify(raw)}`);
    const value = eq > 0 && raw.startsWith('--') ? raw.slice(eq + 1) : argv[++i];
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag}: missing value`);
    if (values.has(flag)) throw new UsageError(`${flag} given twice`);
    values.set(flag, value);
  }
  return { values, bools };
}
