/**
 * Bounded descriptions of untrusted values (frames, REST bodies, thrown things) for rejection details and log lines.
 * None of them recurses without a bound or throws: `String()` of a 10,000-deep array overflows the stack, and a field
 * may hold megabytes.
 */

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The JSON type of a value, telling arrays and null apart from objects. */
export function typeName(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'array' : typeof v;
}

/**
 * A short description of any value from the wire, for a rejection detail or a log line. It never recurses and never
 * throws: `String()` of a 10,000-deep array overflows the stack, and a field may hold megabytes.
 */
export function describe(v: unknown, max = 40): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v.length > max ? `${v.slice(0, max)}...` : v);
    case 'number':
    case 'boolean':
      return String(v);
    default:
      if (Array.isArray(v)) return `array(${v.length})`;
      return typeName(v);
  }
}

/** Deepest level `preview` shows; anything below is summarised. Keeps its recursion (and its cost) bounded. */
const PREVIEW_DEPTH = 4;

/**
 * A bounded JSON-like rendering of a parsed body for an error message (`{"code":-1121,"msg":"Invalid symbol."}`):
 * at most `max` characters and PREVIEW_DEPTH levels, whatever the input's size or depth. Never throws.
 */
export function preview(v: unknown, max = 200): string {
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length >= max) return;
    if (Array.isArray(x)) {
      if (depth >= PREVIEW_DEPTH) {
        out += describe(x);
        return;
      }
      out += '[';
      for (let i = 0; i < x.length && out.length < max; i++) {
        if (i > 0) out += ',';
        walk(x[i], depth + 1);
      }
      out += ']';
    } else if (isRecord(x)) {
      if (depth >= PREVIEW_DEPTH) {
        out += '{...}';
        return;
      }
      out += '{';
      let first = true;
      for (const k of Object.keys(x)) {
        if (out.length >= max) break;
        out += `${first ? '' : ','}${describe(k)}:`;
        first = false;
        walk(x[k], depth + 1);
      }
      out += '}';
    } else {
      out += describe(x, 60);
    }
  };
  walk(v, 0);
  return out.length > max ? `${out.slice(0, max)}...` : out;
}

/** A thrown value as one short line: `RangeError: Maximum call stack size exceeded`. */
export function describeError(err: unknown): string {
  try {
    if (err instanceof Error) return `${String(err.name).slice(0, 40)}: ${String(err.message).slice(0, 200)}`;
    return `non-Error thrown: ${describe(err)}`;
  } catch {
    return 'a thrown value that cannot be described';
  }
}
