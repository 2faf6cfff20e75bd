/**
 * Configuration: read from the environment once, validated, frozen. Every default is a named constant here and in
 * `.env.example`. A bad value throws ConfigError naming the variable and the form it expects.
 */
import { ConfigError } from './errors.ts';
import { registerDatabaseUrl } from './redact.ts';

export type Env = Record<string, string | undefined>;

export const DEFAULTS = {
  BINANCE_SYMBOLS: 'BTCUSDT,ETHUSDT',
  OKX_SYMBOLS: 'BTC-USDT,ETH-USDT',
  BINANCE_WS_URL: 'wss://stream.binance.com:9443',
  OKX_WS_URL: 'wss://ws.okx.com:8443',
  BINANCE_REST_URL: 'https://api.binance.com',
  OKX_REST_URL: 'https://openapi.okx.com',
  LOG_LEVEL: 'info',
  LOG_PRETTY: false,
  STATS_INTERVAL_MS: 60_000,
  // connection lifecycle
  BINANCE_STREAMS_PER_CONNECTION: 200,
  WS_HANDSHAKE_TIMEOUT_MS: 10_000,
  WS_CLOSE_GRACE_MS: 1_000,
  WS_SILENCE_TIMEOUT_MS: 45_000,
  WS_MAX_PAYLOAD_BYTES: 1_048_576,
  OKX_PING_IDLE_MS: 3_000,
  OKX_PONG_TIMEOUT_MS: 3_000,
  BACKOFF_BASE_MS: 500,
  BACKOFF_FACTOR: 2,
  BACKOFF_MAX_MS: 30_000,
  BINANCE_ROTATE_AFTER_MS: 23 * 3_600_000 + 30 * 60_000,
  ROTATION_OVERLAP_MAX_MS: 5_000,
  BINANCE_PING_IDLE_MS: 3_000,
  BINANCE_PONG_TIMEOUT_MS: 3_000,
  PLANNED_CLOSE_MIN_LIVE_MS: 60_000,
  REFUSED_SYMBOL_RETRY_MS: 300_000,
  SYMBOL_CHECK_TIMEOUT_MS: 5_000,
  // storage
  DATABASE_URL: undefined as string | undefined,
  PG_POOL_MAX: 3,
  PG_IDLE_TIMEOUT_MS: 60_000,
  PG_ACQUIRE_TIMEOUT_MS: 5_000,
  PG_CONNECT_TIMEOUT_MS: 5_000,
  PG_STATEMENT_TIMEOUT_MS: 10_000,
  PG_MAX_USES: 7_500,
  PG_MAX_LIFETIME_MS: 3_600_000,
  PG_POOL_RESET_INTERVAL_MS: 1_800_000,
  BATCH_MAX_ROWS: 5_000,
  BATCH_MAX_AGE_MS: 100,
  BATCH_MIN_ROWS: 1_000,
  BATCH_LINGER_MS: 1_000,
  MAX_BUFFERED_TICKS: 100_000,
  SPILL_DIR: './.data/spill',
  EMBEDDED_PG_DIR: './.data/postgres',
  EMBEDDED_PG_PORT: 54329,
  RETENTION_DAYS: undefined as number | undefined,
  DB_START_TIMEOUT_MS: 0,
  EMBEDDED_PG_RUNTIME_DIR: '/var/lib/market-collector',
  // operations
  METRICS_PORT: 9464,
  METRICS_HOST: '127.0.0.1',
  PID_FILE: './.data/collector.pid',
  ALARM_CLOSE_WAIT_GRACE_MS: 30_000,
  ALARM_FD_THRESHOLD: 1_000,
  ALARM_FD_GROWTH_INTERVALS: 5,
  ALARM_RECONNECTS_PER_MINUTE: 10,
  ALARM_EVENT_LOOP_DELAY_MS: 200,
  READY_DB_WINDOW_MS: 60_000,
  // backfill
  BACKFILL_ENABLED: true,
  BACKFILL_MAX_GAP: 1_000_000,
  BACKFILL_RETRY_INTERVAL_MS: 60_000,
  BINANCE_REST_WEIGHT_PER_MINUTE: 3_000,
  OKX_REST_REQUESTS_PER_2S: 10,
  // archive
  ARCHIVE_DIR: undefined as string | undefined,
  ARCHIVE_SETTLE_MS: 600_000,
  ARCHIVE_GRACE_MS: 21_600_000,
  ARCHIVE_CHECK_INTERVAL_MS: 60_000,
} as const;

export interface Config {
  readonly binanceSymbols: readonly string[];
  readonly okxSymbols: readonly string[];
  readonly binanceWsUrl: string;
  readonly okxWsUrl: string;
  readonly binanceRestUrl: string;
  readonly okxRestUrl: string;
  readonly logLevel: string;
  readonly logPretty: boolean;
  readonly statsIntervalMs: number;
  readonly connection: ConnectionConfig;
  readonly binanceStreamsPerConnection: number;
  readonly binanceRotateAfterMs: number;
  readonly okxPingIdleMs: number;
  readonly okxPongTimeoutMs: number;
  readonly binancePingIdleMs: number;
  readonly binancePongTimeoutMs: number;
  /** Bound of the start-up check of the symbols against the exchanges' lists; 0 skips it. */
  readonly symbolCheckTimeoutMs: number;
  readonly storage: StorageConfig;
  readonly monitor: MonitorConfig;
  readonly backfill: BackfillConfig;
  readonly archive: ArchiveConfig;
}

/** The shared lifecycle's knobs, identical for every exchange. */
export interface ConnectionConfig {
  readonly handshakeTimeoutMs: number;
  readonly closeGraceMs: number;
  readonly silenceTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly backoffBaseMs: number;
  readonly backoffFactor: number;
  readonly backoffMaxMs: number;
  readonly rotationOverlapMaxMs: number;
  /** A clean close from the peer after the socket was live this long is planned (upgrade, restart): reconnect at once. */
  readonly plannedCloseMinLiveMs: number;
  /** First wait before subscribing again a symbol the exchange refused; doubles up to an hour. */
  readonly refusedSymbolRetryMs: number;
}

export interface StorageConfig {
  /** Undefined: start the embedded PostgreSQL. */
  readonly databaseUrl: string | undefined;
  readonly poolMax: number;
  readonly idleTimeoutMs: number;
  readonly acquireTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly maxUses: number;
  readonly maxLifetimeMs: number;
  readonly poolResetIntervalMs: number;
  readonly batchMaxRows: number;
  readonly batchMaxAgeMs: number;
  /** A batch below this many rows at batchMaxAgeMs waits for more, up to batchLingerMs from its first row (0: never). */
  readonly batchMinRows: number;
  readonly batchLingerMs: number;
  readonly maxBufferedTicks: number;
  readonly spillDir: string;
  readonly embeddedDir: string;
  readonly embeddedPort: number;
  /** Daily partitions older than today minus this many days are dropped; undefined keeps everything. */
  readonly retentionDays?: number | undefined;
  /** How long a start waits for an unreachable database; 0: for ever. */
  readonly startTimeoutMs: number;
  /** As root: where the embedded binaries and data go when the postgres user cannot reach them. */
  readonly embeddedRuntimeDir: string;
}

export interface MonitorConfig {
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly pidFile: string;
  readonly closeWaitGraceMs: number;
  readonly fdThreshold: number;
  readonly fdGrowthIntervals: number;
  readonly reconnectsPerMinute: number;
  readonly eventLoopDelayMs: number;
  readonly readyDbWindowMs: number;
}

export interface BackfillConfig {
  readonly enabled: boolean;
  readonly maxGap: number;
  readonly retryIntervalMs: number;
  readonly binanceWeightPerMinute: number;
  readonly okxRequestsPer2s: number;
}

/** Automatic archiving (off when `dir` is undefined). See src/archive/archiver.ts. */
export interface ArchiveConfig {
  readonly dir: string | undefined;
  /** A day counts as ended this long after its UTC midnight (late ticks, in-flight batches, a journal replay). */
  readonly settleMs: number;
  /** A day whose gaps are still not filled this long after it ended is archived anyway (its manifest lists them). */
  readonly graceMs: number;
  readonly checkIntervalMs: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const BINANCE_SYMBOL_RE = /^[A-Z0-9]{2,30}$/;
const OKX_SYMBOL_RE = /^[A-Z0-9]{1,20}(-[A-Z0-9]{1,20}){1,3}$/;

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined ? undefined : v.trim();
}

export function readInt(env: Env, name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = raw(env, name);
  if (v === undefined || v === '') return def;
  const expected = `an integer from ${min} to ${max}`;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(name, expected, v);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(name, expected, v);
  return n;
}

/** An integer that may be left unset (then undefined: the feature is off). */
function readOptionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  const v = raw(env, name);
  return v === undefined || v === '' ? undefined : readInt(env, name, min, min, max);
}

export function readNumber(env: Env, name: string, def: number, min: number, max: number): number {
  const v = raw(env, name);
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n < min || n > max) throw new ConfigError(name, `a number from ${min} to ${max}`, v);
  return n;
}

export function readBool(env: Env, name: string, def: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined || v === '') return def;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(name, '1/true/yes/on or 0/false/no/off', v);
}

function readUrl(env: Env, name: string, def: string, protocols: readonly string[]): string {
  const v = raw(env, name);
  const value = v === undefined || v === '' ? def : v;
  const expected = `a ${protocols.join(' or ')} URL base such as ${def}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, expected, value);
  }
  if (url.search !== '') {
    // e.g. Binance's timeUnit=MICROSECOND would make trade times microseconds where milliseconds are stored.
    throw new ConfigError(name, `${expected}, without a query string (the collector builds paths and queries itself; ${url.search.slice(0, 60)} is not supported)`, value);
  }
  if (!protocols.includes(url.protocol) || url.hash !== '') throw new ConfigError(name, expected, value);
  return value.replace(/\/+$/, '');
}

function readSymbols(env: Env, name: string, def: string, re: RegExp, example: string): string[] {
  const v = raw(env, name);
  const value = v === undefined ? def : v;
  if (value === '') return [];
  const symbols = value.split(',').map((s) => s.trim());
  const expected = `comma-separated exchange-native symbols such as ${example} (empty disables the exchange)`;
  for (const s of symbols) {
    if (re.test(s)) continue;
    if (re.test(s.toUpperCase())) throw new ConfigError(name, `upper-case symbols: ${s.toUpperCase()}, not ${s} (${expected})`, value);
    throw new ConfigError(name, expected, value);
  }
  if (new Set(symbols).size !== symbols.length) throw new ConfigError(name, `${expected}, each at most once`, value);
  return symbols;
}

function readEnum(env: Env, name: string, def: string, allowed: readonly string[]): string {
  const v = raw(env, name);
  if (v === undefined || v === '') return def;
  if (!allowed.includes(v)) throw new ConfigError(name, `one of ${allowed.join(', ')}`, v);
  return v;
}

function readDatabaseUrl(env: Env): string | undefined {
  const v = raw(env, 'DATABASE_URL');
  if (v === undefined || v === '') return undefined;
  // Before anything can log it: its password is hidden from every log line from now on, as pg parses it.
  registerDatabaseUrl(v);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError('DATABASE_URL', 'a postgres://user:password@host:port/database URL', '<unparseable, not shown>');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', 'a postgres://user:password@host:port/database URL', `${url.protocol}//...`);
  }
  return v;
}

function readString(env: Env, name: string, def: string): string {
  const v = raw(env, name);
  return v === undefined || v === '' ? def : v;
}

export function loadConnectionConfig(env: Env): ConnectionConfig {
  const backoffBaseMs = readInt(env, 'BACKOFF_BASE_MS', DEFAULTS.BACKOFF_BASE_MS, 1, 600_000);
  const backoffMaxMs = readInt(env, 'BACKOFF_MAX_MS', DEFAULTS.BACKOFF_MAX_MS, 1, 3_600_000);
  if (backoffMaxMs < backoffBaseMs) throw new ConfigError('BACKOFF_MAX_MS', `an integer not below BACKOFF_BASE_MS (${backoffBaseMs})`, String(backoffMaxMs));
  return {
    handshakeTimeoutMs: readInt(env, 'WS_HANDSHAKE_TIMEOUT_MS', DEFAULTS.WS_HANDSHAKE_TIMEOUT_MS, 100, 120_000),
    closeGraceMs: readInt(env, 'WS_CLOSE_GRACE_MS', DEFAULTS.WS_CLOSE_GRACE_MS, 0, 1_000),
    silenceTimeoutMs: readInt(env, 'WS_SILENCE_TIMEOUT_MS', DEFAULTS.WS_SILENCE_TIMEOUT_MS, 100, 600_000),
    maxPayloadBytes: readInt(env, 'WS_MAX_PAYLOAD_BYTES', DEFAULTS.WS_MAX_PAYLOAD_BYTES, 1_024, 104_857_600),
    backoffBaseMs,
    backoffFactor: readNumber(env, 'BACKOFF_FACTOR', DEFAULTS.BACKOFF_FACTOR, 1, 10),
    backoffMaxMs,
    rotationOverlapMaxMs: readInt(env, 'ROTATION_OVERLAP_MAX_MS', DEFAULTS.ROTATION_OVERLAP_MAX_MS, 100, 30_000),
    plannedCloseMinLiveMs: readInt(env, 'PLANNED_CLOSE_MIN_LIVE_MS', DEFAULTS.PLANNED_CLOSE_MIN_LIVE_MS, 0, 86_400_000),
    refusedSymbolRetryMs: readInt(env, 'REFUSED_SYMBOL_RETRY_MS', DEFAULTS.REFUSED_SYMBOL_RETRY_MS, 100, 3_600_000),
  };
}

function loadStorageConfig(env: Env): StorageConfig {
  return {
    databaseUrl: readDatabaseUrl(env),
    poolMax: readInt(env, 'PG_POOL_MAX', DEFAULTS.PG_POOL_MAX, 1, 100),
    idleTimeoutMs: readInt(env, 'PG_IDLE_TIMEOUT_MS', DEFAULTS.PG_IDLE_TIMEOUT_MS, 100, 86_400_000),
    acquireTimeoutMs: readInt(env, 'PG_ACQUIRE_TIMEOUT_MS', DEFAULTS.PG_ACQUIRE_TIMEOUT_MS, 100, 600_000),
    connectTimeoutMs: readInt(env, 'PG_CONNECT_TIMEOUT_MS', DEFAULTS.PG_CONNECT_TIMEOUT_MS, 100, 600_000),
    statementTimeoutMs: readInt(env, 'PG_STATEMENT_TIMEOUT_MS', DEFAULTS.PG_STATEMENT_TIMEOUT_MS, 100, 3_600_000),
    maxUses: readInt(env, 'PG_MAX_USES', DEFAULTS.PG_MAX_USES, 1),
    maxLifetimeMs: readInt(env, 'PG_MAX_LIFETIME_MS', DEFAULTS.PG_MAX_LIFETIME_MS, 1_000, 86_400_000),
    poolResetIntervalMs: readInt(env, 'PG_POOL_RESET_INTERVAL_MS', DEFAULTS.PG_POOL_RESET_INTERVAL_MS, 0, 86_400_000),
    batchMaxRows: readInt(env, 'BATCH_MAX_ROWS', DEFAULTS.BATCH_MAX_ROWS, 1, 7_000),
    batchMaxAgeMs: readInt(env, 'BATCH_MAX_AGE_MS', DEFAULTS.BATCH_MAX_AGE_MS, 1, 60_000),
    batchMinRows: readInt(env, 'BATCH_MIN_ROWS', DEFAULTS.BATCH_MIN_ROWS, 0, 7_000),
    batchLingerMs: readInt(env, 'BATCH_LINGER_MS', DEFAULTS.BATCH_LINGER_MS, 1, 60_000),
    maxBufferedTicks: readInt(env, 'MAX_BUFFERED_TICKS', DEFAULTS.MAX_BUFFERED_TICKS, 100, 10_000_000),
    spillDir: readString(env, 'SPILL_DIR', DEFAULTS.SPILL_DIR),
    embeddedDir: readString(env, 'EMBEDDED_PG_DIR', DEFAULTS.EMBEDDED_PG_DIR),
    embeddedPort: readInt(env, 'EMBEDDED_PG_PORT', DEFAULTS.EMBEDDED_PG_PORT, 1, 65_535),
    retentionDays: readOptionalInt(env, 'RETENTION_DAYS', 1, 36_500),
    startTimeoutMs: readInt(env, 'DB_START_TIMEOUT_MS', DEFAULTS.DB_START_TIMEOUT_MS, 0, 86_400_000),
    embeddedRuntimeDir: readString(env, 'EMBEDDED_PG_RUNTIME_DIR', DEFAULTS.EMBEDDED_PG_RUNTIME_DIR),
  };
}

function loadMonitorConfig(env: Env): MonitorConfig {
  return {
    metricsPort: readInt(env, 'METRICS_PORT', DEFAULTS.METRICS_PORT, 0, 65_535),
    metricsHost: readString(env, 'METRICS_HOST', DEFAULTS.METRICS_HOST),
    pidFile: readString(env, 'PID_FILE', DEFAULTS.PID_FILE),
    closeWaitGraceMs: readInt(env, 'ALARM_CLOSE_WAIT_GRACE_MS', DEFAULTS.ALARM_CLOSE_WAIT_GRACE_MS, 0, 3_600_000),
    fdThreshold: readInt(env, 'ALARM_FD_THRESHOLD', DEFAULTS.ALARM_FD_THRESHOLD, 1),
    fdGrowthIntervals: readInt(env, 'ALARM_FD_GROWTH_INTERVALS', DEFAULTS.ALARM_FD_GROWTH_INTERVALS, 2, 1_000),
    reconnectsPerMinute: readInt(env, 'ALARM_RECONNECTS_PER_MINUTE', DEFAULTS.ALARM_RECONNECTS_PER_MINUTE, 1),
    eventLoopDelayMs: readInt(env, 'ALARM_EVENT_LOOP_DELAY_MS', DEFAULTS.ALARM_EVENT_LOOP_DELAY_MS, 1),
    readyDbWindowMs: readInt(env, 'READY_DB_WINDOW_MS', DEFAULTS.READY_DB_WINDOW_MS, 1_000),
  };
}

function loadBackfillConfig(env: Env): BackfillConfig {
  return {
    enabled: readBool(env, 'BACKFILL_ENABLED', DEFAULTS.BACKFILL_ENABLED),
    maxGap: readInt(env, 'BACKFILL_MAX_GAP', DEFAULTS.BACKFILL_MAX_GAP, 1),
    retryIntervalMs: readInt(env, 'BACKFILL_RETRY_INTERVAL_MS', DEFAULTS.BACKFILL_RETRY_INTERVAL_MS, 100),
    binanceWeightPerMinute: readInt(env, 'BINANCE_REST_WEIGHT_PER_MINUTE', DEFAULTS.BINANCE_REST_WEIGHT_PER_MINUTE, 25, 6_000),
    okxRequestsPer2s: readInt(env, 'OKX_REST_REQUESTS_PER_2S', DEFAULTS.OKX_REST_REQUESTS_PER_2S, 1, 20),
  };
}

function loadArchiveConfig(env: Env): ArchiveConfig {
  const dir = raw(env, 'ARCHIVE_DIR');
  return {
    dir: dir === undefined || dir === '' ? undefined : dir,
    settleMs: readInt(env, 'ARCHIVE_SETTLE_MS', DEFAULTS.ARCHIVE_SETTLE_MS, 0, 86_400_000),
    graceMs: readInt(env, 'ARCHIVE_GRACE_MS', DEFAULTS.ARCHIVE_GRACE_MS, 0, 30 * 86_400_000),
    checkIntervalMs: readInt(env, 'ARCHIVE_CHECK_INTERVAL_MS', DEFAULTS.ARCHIVE_CHECK_INTERVAL_MS, 100, 3_600_000),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const config: Config = {
    binanceSymbols: readSymbols(env, 'BINANCE_SYMBOLS', DEFAULTS.BINANCE_SYMBOLS, BINANCE_SYMBOL_RE, 'BTCUSDT,ETHUSDT'),
    okxSymbols: readSymbols(env, 'OKX_SYMBOLS', DEFAULTS.OKX_SYMBOLS, OKX_SYMBOL_RE, 'BTC-USDT,ETH-USDT'),
    binanceWsUrl: readUrl(env, 'BINANCE_WS_URL', DEFAULTS.BINANCE_WS_URL, ['ws:', 'wss:']),
    okxWsUrl: readUrl(env, 'OKX_WS_URL', DEFAULTS.OKX_WS_URL, ['ws:', 'wss:']),
    binanceRestUrl: readUrl(env, 'BINANCE_REST_URL', DEFAULTS.BINANCE_REST_URL, ['http:', 'https:']),
    okxRestUrl: readUrl(env, 'OKX_REST_URL', DEFAULTS.OKX_REST_URL, ['http:', 'https:']),
    logLevel: readEnum(env, 'LOG_LEVEL', DEFAULTS.LOG_LEVEL, LOG_LEVELS),
    logPretty: readBool(env, 'LOG_PRETTY', DEFAULTS.LOG_PRETTY),
    statsIntervalMs: readInt(env, 'STATS_INTERVAL_MS', DEFAULTS.STATS_INTERVAL_MS, 100, 86_400_000),
    connection: loadConnectionConfig(env),
    binanceStreamsPerConnection: readInt(env, 'BINANCE_STREAMS_PER_CONNECTION', DEFAULTS.BINANCE_STREAMS_PER_CONNECTION, 1, 1024),
    binanceRotateAfterMs: readInt(env, 'BINANCE_ROTATE_AFTER_MS', DEFAULTS.BINANCE_ROTATE_AFTER_MS, 1_000, 86_400_000),
    okxPingIdleMs: readInt(env, 'OKX_PING_IDLE_MS', DEFAULTS.OKX_PING_IDLE_MS, 100, 29_000),
    okxPongTimeoutMs: readInt(env, 'OKX_PONG_TIMEOUT_MS', DEFAULTS.OKX_PONG_TIMEOUT_MS, 100, 60_000),
    binancePingIdleMs: readInt(env, 'BINANCE_PING_IDLE_MS', DEFAULTS.BINANCE_PING_IDLE_MS, 100, 60_000),
    binancePongTimeoutMs: readInt(env, 'BINANCE_PONG_TIMEOUT_MS', DEFAULTS.BINANCE_PONG_TIMEOUT_MS, 100, 60_000),
    symbolCheckTimeoutMs: readInt(env, 'SYMBOL_CHECK_TIMEOUT_MS', DEFAULTS.SYMBOL_CHECK_TIMEOUT_MS, 0, 60_000),
    storage: loadStorageConfig(env),
    monitor: loadMonitorConfig(env),
    backfill: loadBackfillConfig(env),
    archive: loadArchiveConfig(env),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Variables read outside loadConfig (scripts, tests) that are not near misses of anything. */
const OTHER_KNOWN = ['DEMO_DATABASE_URL', 'TEST_DATABASE_URL'];

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

export interface NearMiss {
  readonly variable: string;
  readonly didYouMean: string;
}

/**
 * Variables that are set but unknown, whose name is a near miss of a known one (`PG_POOL_MAXX`, `pg_pool_max`,
 * `BACKOF_MAX_MS`): the collector would silently ignore them, so the caller warns. Names unlike ours (PATH, HOME)
 * are never reported.
 */
export function nearMissVariables(env: Env): NearMiss[] {
  const known = new Set<string>([...Object.keys(DEFAULTS), ...OTHER_KNOWN]);
  const out: NearMiss[] = [];
  for (const name of Object.keys(env)) {
    if (known.has(name) || env[name] === undefined) continue;
    const upper = name.toUpperCase();
    const limit = upper.length >= 8 ? 2 : 1;
    let best: { name: string; d: number } | undefined;
    for (const k of known) {
      const d = upper === k ? 0 : editDistance(upper, k);
      if (d <= limit && (!best || d < best.d)) best = { name: k, d };
    }
    if (best) out.push({ variable: name, didYouMean: best.name });
  }
  return out;
}
