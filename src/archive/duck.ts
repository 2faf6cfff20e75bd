/**
 * DuckDB as the archive uses it (@duckdb/node-api; its queries run off the event loop): one thread, a memory cap,
 * UTC, and no extension downloads (Parquet and ICU are built in; nothing is fetched at run time). In this process
 * (CLIs, tests) or in a child process (duck-remote.ts: the collector's archiver).
 */
import type { DuckDBConnection } from '@duckdb/node-api';

/** DuckDB memory cap per instance; past it, it spills to its temp directory. */
export const DUCKDB_MEMORY_LIMIT = '128MB';
/** One worker thread: on a small machine the collector and PostgreSQL keep the other cores. */
export const DUCKDB_THREADS = '1';

/** A DuckDB session: statements in, rows out (values as @duckdb/node-api gives them, DuckDB value objects as text). */
export interface Duck {
  /** Runs a statement; resolves with the rows it changed. */
  run(sql: string): Promise<number>;
  rows(sql: string): Promise<unknown[][]>;
  /** Closes the session (and its instance); idempotent. */
  close(): Promise<void>;
}

export interface OpenDuckOptions {
  /** Where DuckDB may spill past its memory cap; defaults to DuckDB's own choice. */
  readonly tempDir?: string;
}

/** Opens DuckDB: in this process, or (see duck-remote.ts) in a child. */
export type DuckFactory = (opts?: OpenDuckOptions) => Promise<Duck>;

/** Plain values for a row: DuckDB value objects (decimals, timestamps...) become their text. */
export function plainRow(row: readonly unknown[]): unknown[] {
  return row.map((v) => (v !== null && typeof v === 'object' ? String(v) : v));
}

/** An in-memory DuckDB in this process. */
export const openDuck: DuckFactory = async (opts = {}) => {
  const options: Record<string, string> = {
    threads: DUCKDB_THREADS,
    memory_limit: DUCKDB_MEMORY_LIMIT,
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  };
  if (opts.tempDir) options.temp_directory = opts.tempDir;
  // Loaded here, not at the top: the collector's process imports this module (exporter.ts, archive-reader.ts) but
  // opens DuckDB only in its archive child; a static import put DuckDB's native library in the collector's RSS
  // (idle: 96 MB with it, see BENCHMARKS.md).
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', options);
  let conn: DuckDBConnection;
  try {
    conn = await instance.connect();
    await conn.run(`SET TimeZone = 'UTC'`);
  } catch (err) {
    instance.closeSync();
    throw err;
  }
  let closed = false;
  return {
    run: async (sql) => (await conn.run(sql)).rowsChanged,
    rows: async (sql) => (await conn.runAndReadAll(sql)).getRows().map(plainRow),
    async close() {
      if (closed) return;
      closed = true;
      conn.closeSync();
      instance.closeSync();
    },
  };
};

/** A DuckDB string literal. */
export function duckString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** µs since the epoch → ISO 8601 with microseconds, as DuckDB's strftime formats it. */
export const ISO_US_FORMAT = '%Y-%m-%dT%H:%M:%S.%fZ';
