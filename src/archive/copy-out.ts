/**
 * One chunk of one symbol-day out of PostgreSQL with `COPY ... TO STDOUT (FORMAT csv)` (pg-copy-streams) into a
 * file: the bytes go from the socket to the disk without being parsed into rows, so memory stays at one socket
 * buffer and the event loop does little work. The client comes from the storage pool and is held only for the chunk.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { CopyToStreamQuery } from 'pg-copy-streams';
import { ArchiveError } from './archive-error.ts';
import { dayEnd, dayStart } from './day.ts';
import type { Instrument, TickSource } from './tick-source.ts';

/** Column order of a chunk file; timestamps as microseconds since the epoch (exact, zone-free). */
export const CHUNK_COLUMNS = ['trade_id', 'price', 'qty', 'side', 'trade_time_us', 'received_at_us', 'source'] as const;

export interface ChunkQuery {
  readonly inst: Instrument;
  readonly day: string;
  /**
   * Inclusive trade id bounds; rows come in trade id order. The chunk is bounded by its id range, never by a LIMIT:
   * `order by ... limit` over the ticks view (a union over partitions and the legacy table) sorts every remaining
   * row of the day for each chunk, quadratic in the day's size (measured: 5M ticks 33 times slower than 500k).
   */
  readonly fromId: bigint;
  readonly toId: bigint;
}

function ts(ms: number): string {
  return pg.escapeLiteral(new Date(ms).toISOString());
}

/** COPY takes no bind parameters: every value is a checked bigint or goes through escapeLiteral. */
export function chunkStatement(q: ChunkQuery): string {
  return `COPY (select trade_id, price::text, qty::text, side,
      (extract(epoch from trade_time) * 1000000)::bigint, (extract(epoch from received_at) * 1000000)::bigint, source
    from ticks
    where exchange = ${pg.escapeLiteral(q.inst.exchange)} and symbol = ${pg.escapeLiteral(q.inst.symbol)}
      and trade_id >= ${BigInt(q.fromId)} and trade_id <= ${BigInt(q.toId)}
      and trade_time >= ${ts(dayStart(q.day))}::timestamptz and trade_time < ${ts(dayEnd(q.day))}::timestamptz
    order by trade_id) TO STDOUT (FORMAT csv)`;
}

const TAIL_BYTES = 4_096;

/**
 * Writes every chunk to `fh`, looping on short writes. After a write error it keeps consuming (and discarding) the
 * COPY stream, so the connection reaches ReadyForQuery and goes back to the pool usable; the error is raised after.
 */
class ChunkSink extends Writable {
  readonly #fh: FileHandle;
  #tail: Buffer = Buffer.alloc(0);
  error: Error | undefined;

  constructor(fh: FileHandle) {
    super();
    this.#fh = fh;
  }

  /** The first field of the last line written: the chunk's last trade id. */
  lastId(): bigint | undefined {
    const lines = this.#tail.toString('latin1').split('\n').filter((l) => l.length > 0);
    const last = lines.at(-1);
    const id = last?.slice(0, last.indexOf(','));
    return id && /^-?\d+$/.test(id) ? BigInt(id) : undefined;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#tail = Buffer.concat([this.#tail, chunk.subarray(-TAIL_BYTES)]).subarray(-TAIL_BYTES);
    if (this.error) return cb();
    void this.#writeAll(chunk).then(() => cb(), (err: unknown) => {
      this.error = err instanceof Error ? err : new Error(String(err));
      cb();
    });
  }

  async #writeAll(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.#fh.write(chunk, off, chunk.length - off);
      if (bytesWritten <= 0) throw new ArchiveError('short write with no progress (disk full?)');
      off += bytesWritten;
    }
  }
}

/** Copies one chunk into `file` (created, must not exist). Returns the rows copied and the last trade id. */
export async function copyChunkToFile(source: TickSource, q: ChunkQuery, file: string): Promise<{ rows: number; lastId: bigint | undefined }> {
  const fh = await open(file, 'wx');
  try {
    const sink = new ChunkSink(fh);
    const client = await source.connect();
    let stream: CopyToStreamQuery;
    try {
      // The pool client passes a Submittable straight to pg (kysely's type only knows cursors).
      stream = client.query(copyTo(chunkStatement(q)) as never) as unknown as CopyToStreamQuery;
      await pipeline(stream, sink);
    } finally {
      client.release();
    }
    if (sink.error) throw new ArchiveError(`cannot write export chunk ${file}: ${sink.error.message}`, { cause: sink.error });
    await fh.sync();
    return { rows: stream.rowCount, lastId: sink.lastId() };
  } finally {
    await fh.close();
  }
}
