import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, DEFAULTS, nearMissVariables } from '../src/config.ts';
import { applyEnvFile } from '../src/env-file.ts';
import { ConfigError } from '../src/errors.ts';

test('defaults load and are frozen', () => {
  const c = loadConfig({});
  assert.deepEqual(c.binanceSymbols, ['BTCUSDT', 'ETHUSDT']);
  assert.equal(c.binanceWsUrl, DEFAULTS.BINANCE_WS_URL);
  assert.equal(c.connection.backoffBaseMs, 500);
  assert.equal(c.storage.poolMax, 3);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.connection) && Object.isFrozen(c.binanceSymbols));
});

test('empty symbol list disables an exchange', () => {
  assert.deepEqual(loadConfig({ OKX_SYMBOLS: '' }).okxSymbols, []);
});

const bad: Array<[string, string, RegExp]> = [
  ['BINANCE_SYMBOLS', 'btc usdt', /BINANCE_SYMBOLS: expected comma-separated exchange-native symbols such as BTCUSDT/],
  ['BINANCE_SYMBOLS', 'BTCUSDT,BTCUSDT', /each at most once/],
  ['OKX_SYMBOLS', 'BTCUSDT', /OKX_SYMBOLS: expected .*BTC-USDT/],
  ['BINANCE_WS_URL', 'http://x', /BINANCE_WS_URL: expected a ws: or wss: URL base/],
  ['OKX_WS_URL', 'not a url', /OKX_WS_URL: expected a ws: or wss: URL/],
  ['BINANCE_REST_URL', 'ftp://x', /BINANCE_REST_URL: expected a http: or https: URL/],
  ['OKX_REST_URL', 'https://x?a=1', /OKX_REST_URL/],
  ['LOG_LEVEL', 'loud', /LOG_LEVEL: expected one of fatal, error/],
  ['STATS_INTERVAL_MS', '1e3', /STATS_INTERVAL_MS: expected an integer from 100/],
  ['STATS_INTERVAL_MS', '-5', /STATS_INTERVAL_MS/],
  ['WS_CLOSE_GRACE_MS', '5000', /WS_CLOSE_GRACE_MS: expected an integer from 0 to 1000/],
  ['BINANCE_STREAMS_PER_CONNECTION', '2000', /from 1 to 1024/],
  ['PG_POOL_MAX', 'three', /PG_POOL_MAX: expected an integer/],
  ['LOG_PRETTY', 'maybe', /LOG_PRETTY: expected 1\/true/],
  ['BACKOFF_FACTOR', 'x2', /BACKOFF_FACTOR: expected a number/],
];
for (const [name, value, re] of bad) {
  test(`invalid ${name}=${value} names the variable and the expected form`, () => {
    assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'E_CONFIG');
      assert.equal(err.variable, name);
      assert.match(err.message, re);
      return true;
    });
  });
}

test('BACKOFF_MAX_MS below BACKOFF_BASE_MS is refused', () => {
  assert.throws(() => loadConfig({ BACKOFF_BASE_MS: '1000', BACKOFF_MAX_MS: '500' }), /BACKOFF_MAX_MS: expected an integer not below BACKOFF_BASE_MS/);
});

test('a malformed DATABASE_URL never echoes its value (it may hold a password)', () => {
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2@h/db' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.doesNotMatch(err.message, /hunter2/);
    return true;
  });
});

test('.env.example lists every variable with its default, and loads cleanly', async () => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('../.env.example', import.meta.url), 'utf8');
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^#?\s*([A-Z][A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) entries.set(m[1]!, m[2]!);
  }
  for (const [name, def] of Object.entries(DEFAULTS)) {
    assert.ok(entries.has(name), `${name} missing from .env.example`);
    if (def === undefined) continue;
    const shown = entries.get(name)!;
    const expected = typeof def === 'boolean' ? (def ? '1' : '0') : String(def);
    assert.equal(shown, expected, `${name} default in .env.example`);
  }
  const env = Object.fromEntries([...entries].filter(([k]) => k !== 'DATABASE_URL'));
  assert.doesNotThrow(() => loadConfig(env));
});

test('a lower-case symbol is refused saying upper case', () => {
  assert.throws(() => loadConfig({ BINANCE_SYMBOLS: 'btcusdt,ETHUSDT' }), /BINANCE_SYMBOLS: expected upper-case symbols: BTCUSDT, not btcusdt/);
  assert.throws(() => loadConfig({ OKX_SYMBOLS: 'btc-usdt' }), /OKX_SYMBOLS: expected upper-case symbols: BTC-USDT, not btc-usdt/);
});

test('near misses of known variables are reported with the name meant; unrelated names are not', () => {
  const env = { PG_POOL_MAXX: '3', pg_idle_timeout_ms: '1', BACKOF_MAX_MS: '9', BINANCE_SYMBOL: 'X', PG_POOL_MAX: '2', PATH: '/bin', HOME: '/root', TERM: 'xterm', HOSTNAME: 'h', LANG: 'C', NODE_OPTIONS: '' };
  assert.deepEqual(nearMissVariables(env).sort((a, b) => (a.variable < b.variable ? -1 : 1)), [
    { variable: 'BACKOF_MAX_MS', didYouMean: 'BACKOFF_MAX_MS' },
    { variable: 'BINANCE_SYMBOL', didYouMean: 'BINANCE_SYMBOLS' },
    { variable: 'PG_POOL_MAXX', didYouMean: 'PG_POOL_MAX' },
    { variable: 'pg_idle_timeout_ms', didYouMean: 'PG_IDLE_TIMEOUT_MS' },
  ]);
  assert.deepEqual(nearMissVariables(process.env), [], 'nothing in this machine\'s own environment is flagged');
});

test('.env: read with Node\'s parser, the environment wins, a missing file is no error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mc-envfile-'));
  try {
    const file = join(dir, '.env');
    writeFileSync(file, '# comment\nLOG_LEVEL=debug\nOKX_SYMBOLS="BTC-USDT"\nPG_POOL_MAX=7 # trailing comment\n');
    const env: Record<string, string | undefined> = { LOG_LEVEL: 'warn' };
    const r = applyEnvFile(env, file);
    assert.equal(r.path, file);
    assert.deepEqual([...r.applied].sort(), ['OKX_SYMBOLS', 'PG_POOL_MAX']);
    assert.deepEqual(r.overridden, ['LOG_LEVEL']);
    const c = loadConfig(env);
    assert.equal(c.logLevel, 'warn', 'the environment wins');
    assert.deepEqual(c.okxSymbols, ['BTC-USDT']);
    assert.equal(c.storage.poolMax, 7);
    assert.deepEqual(applyEnvFile({}, join(dir, 'none')), { path: null, applied: [], overridden: [] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
