/**
 * Secrets never reach a log line. Two layers:
 *
 * 1. Known secrets, replaced literally wherever they appear: the password of DATABASE_URL (registered when the
 *    configuration reads it) and the embedded server's password. The URL is parsed by pg's own parser
 *    (pg-connection-string, the module pg uses for `connectionString`), so what is hidden is exactly what pg sends
 *    as the password: everything between the first `:` of the user info and the LAST `@` of the authority, spaces,
 *    `%`, `/`, `:` and non-ASCII characters included. Its decoded, percent-encoded and as-written forms are all
 *    registered, because each can show up (an error echoing the URL, a URL printed by the URL class...).
 * 2. A pattern for any other `scheme://user:password@host` URL and `password=...` pair in free text. The user info
 *    runs to the last `@` before the host (as the WHATWG URL parser and pg read it), not the first.
 */
import { parse as parsePgConnectionString } from 'pg-connection-string';

const MIN_SECRET_LENGTH = 4;
const secrets = new Set<string>();
let ordered: string[] = [];

/** Hide `value` in every log line from now on (with its URL-encoded forms). Short values are left to the patterns. */
export function registerSecret(value: string | null | undefined): void {
  if (!value) return;
  const forms = new Set([value]);
  for (const encode of [encodeURIComponent, encodeURI]) {
    try {
      forms.add(encode(value));
    } catch {
      // lone surrogates: the raw form is enough
    }
  }
  let added = false;
  for (const f of forms) {
    if (f.length < MIN_SECRET_LENGTH || secrets.has(f)) continue;
    secrets.add(f);
    added = true;
  }
  // Longest first, so a secret that contains another is replaced whole.
  if (added) ordered = [...secrets].sort((a, b) => b.length - a.length);
}

/** Registers the password of a postgres URL as pg will read it, plus the text of it as written in the URL. */
export function registerDatabaseUrl(url: string): void {
  try {
    registerSecret(parsePgConnectionString(url).password);
  } catch {
    // pg cannot parse it either; the as-written form below still applies
  }
  const written = /^[a-z][a-z0-9+.-]*:\/\/[^:/]*:(.*)@[^@]*$/is.exec(url)?.[1];
  registerSecret(written);
  try {
    registerSecret(new URL(url).password);
  } catch {
    // not a WHATWG URL
  }
}

/**
 * `scheme://user:` then the password, lazily, up to an `@` followed by a host that has no further `@` before the
 * path, query, fragment, whitespace or the end. So `u:p@ss@host/db` hides `p@ss`, and `/`, `:` or `%` inside the
 * password are hidden too.
 */
const URL_PASSWORD_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/]*:)(\S*?)@(?=[^@\s/?#]*(?:[/?#\s"'<>]|$))/gi;
/** `password=x`, `password: x`, `"password":"x"`, `PGPASSWORD=x`; not `PGPASSWORD=$(cat file)`. */
const KEYWORD_PASSWORD_RE = /(password["']?\s*[=:]\s*)(?!\$\()("[^"]*"|'[^']*'|[^\s,;&}]+)/gi;

export function redactSecrets(text: string): string {
  let out = text;
  for (const s of ordered) if (out.includes(s)) out = out.split(s).join('***');
  return out.replace(URL_PASSWORD_RE, '$1***@').replace(KEYWORD_PASSWORD_RE, '$1***');
}
