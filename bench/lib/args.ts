/** `--name value` / `--flag` command-line parsing for the bench and soak scripts. */

export interface Args {
  readonly flags: ReadonlySet<string>;
  readonly values: ReadonlyMap<string, string>;
}

export function parseArgs(argv: readonly string[], booleans: readonly string[]): Args {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.includes(name)) {
      flags.add(name);
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    values.set(name, value);
  }
  return { flags, values };
}

export function numberArg(args: Args, name: string, def: number): number {
  const v = args.values.get(name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got ${v}`);
  return n;
}

export function listArg(args: Args, name: string, def: readonly number[]): number[] {
  const v = args.values.get(name);
  if (v === undefined) return [...def];
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error(`--${name}: expected comma-separated positive numbers, got ${v}`);
  return list;
}
