/**
 * DuckDB as the archive uses it (@duckdb/node-api, in-process, its queries run off the event loop): one thread, a
 * memory cap, UTC, and no extension downloads (Parquet and ICU are built in; nothing is fetched at run time).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import type { DuckDBConnection } from '@duckdb/node-api';

/** DuckDB memory cap per instance; past it, it spills to its temp directory. */
export const DUCKDB_MEMORY_LIMIT = '128MB';
/** One worker thread: on a small machine the collector and PostgreSQL keep the other cores. */
export const DUCKDB_THREADS = '1';

export interface Duck {
  readonly conn: DuckDBConnection;
  /** Closes the connection and the instance; idempotent. */
  close(): void;
}

export interface OpenDuckOptions {
  /** Database file; ':memory:' (the default) for reading only. */
  readonly path?: string;
  /** Where DuckDB may spill; defaults to DuckDB's own choice. */
  readonly tempDir?: string;
}

export async function openDuck(opts: OpenDuckOptions = {}): Promise<Duck> {
  const options: Record<string, string> = {
    threads: DUCKDB_THREADS,
    memory_limit: DUCKDB_MEMORY_LIMIT,
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  };
  if (opts.tempDir) options.temp_directory = opts.tempDir;
  const instance = await DuckDBInstance.create(opts.path ?? ':memory:', options);
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
    conn,
    close() {
      if (closed) return;
      closed = true;
      conn.closeSync();
      instance.closeSync();
    },
  };
}

/** A DuckDB string literal. */
export function duckString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** µs since the epoch → ISO 8601 with microseconds, as DuckDB's strftime formats it. */
export const ISO_US_FORMAT = '%Y-%m-%dT%H:%M:%S.%fZ';
