/**
 * The append-only spill journal: ticks that do not fit in memory while the database is down or slow.
 *
 * Layout: `spillDir/segment-<12-digit seq>.ndjson`, one JSON tick per line. Appends go to the newest (active)
 * segment, each append is one write + fsync. Replay reads the oldest segment in order, and the segment file is
 * removed only after all its ticks are stored; a crash in between replays it again (inserts are idempotent).
 *
 * A write may take only part of the data without an error (a nearly full filesystem: 65,536 of 102,400 bytes on a
 * 64 KiB tmpfs). An append therefore loops until every byte is written, and counts as done only once all of them are
 * written and synced; otherwise it fails, the partial bytes are truncated away, and the caller keeps the ticks.
 * Each segment records its committed length: a torn tail beyond it (a failed append whose truncate failed too, or a
 * crash mid-append found at the next start) is truncated before the next append or at open, and replay never reads
 * past it.
 */
import { createReadStream } from 'node:fs';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, rm, truncate } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.ts';
import type { Tick } from '../tick.ts';
import { SpillError } from './errors.ts';

const SEGMENT_RE = /^segment-(\d{12})\.ndjson$/;
/** Seal the active segment past this size so replay works on bounded files. */
const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;

export interface Segment {
  readonly seq: number;
  readonly path: string;
  /** Committed length: every byte up to here is complete lines, written and synced. The file may be longer (torn). */
  bytes: number;
  ticks: number;
  /** Smallest writer sequence number appended in this run; 0 for segments left by an earlier run. */
  minSeq: number;
  sealed: boolean;
  /** An append to this segment is in progress: not readable for replay yet. */
  busy: boolean;
}

function segmentName(seq: number): string {
  return `segment-${String(seq).padStart(12, '0')}.ndjson`;
}

function serialize(ticks: readonly Tick[]): Buffer {
  let text = '';
  for (const t of ticks) text += JSON.stringify(t) + '\n';
  return Buffer.from(text, 'utf8');
}

/** Complete lines of a segment file and where the last one ends; bytes after it are a torn tail. */
async function scanSegment(path: string): Promise<{ lines: number; committed: number; size: number }> {
  let lines = 0;
  let committed = 0;
  let size = 0;
  const stream = createReadStream(path);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
      lines++;
      committed = size + i + 1;
    }
    size += chunk.length;
  }
  return { lines, committed, size };
}

/** Writes all of `data` at the end of the file: a short write continues where it stopped, no progress is an error. */
async function writeFully(handle: FileHandle, data: Buffer): Promise<void> {
  let done = 0;
  try {
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done);
      if (bytesWritten <= 0) throw new Error('short write with no progress');
      done += bytesWritten;
    }
  } catch (err) {
    throw partialWrite(err, done, data.length);
  }
}

function writeFullySync(fd: number, data: Buffer): void {
  let done = 0;
  try {
    while (done < data.length) {
      const n = writeSync(fd, data, done, data.length - done);
      if (n <= 0) throw new Error('short write with no progress');
      done += n;
    }
  } catch (err) {
    throw partialWrite(err, done, data.length);
  }
}

/** The write error, saying how far the append got ("ENOSPC: no space left on device (after 65536 of 102400 bytes)"). */
function partialWrite(err: unknown, done: number, total: number): Error {
  const e = err as Error & { code?: string };
  return Object.assign(new Error(`${e.message} (after ${done} of ${total} bytes)`, { cause: err }), e.code ? { code: e.code } : {});
}

function appendError(seg: Segment, err: unknown): SpillError {
  return new SpillError(`cannot append to spill journal ${seg.path}: ${(err as Error).message}`, { cause: err });
}

export class Journal {
  readonly dir: string;
  readonly #log: Logger;
  readonly #segments: Segment[] = [];
  #nextSeq = 1;

  private constructor(dir: string, logger: Logger) {
    this.dir = dir;
    this.#log = logger;
  }

  /** Opens (creating if needed) the journal directory and indexes segments left from earlier runs. */
  static async open(dir: string, logger: Logger): Promise<Journal> {
    const journal = new Journal(dir, logger);
    try {
      await mkdir(dir, { recursive: true });
      const names = (await readdir(dir)).filter((n) => SEGMENT_RE.test(n)).sort();
      for (const name of names) {
        const seq = Number(SEGMENT_RE.exec(name)![1]);
        const path = join(dir, name);
        const { lines, committed, size } = await scanSegment(path);
        if (committed < size) {
          logger.warn({ segment: path, tornBytes: size - committed, ticks: lines }, 'spill journal segment ends in a torn line (a crash mid-append); truncating it');
          // If this fails the segment still records `committed`: replay never reads the torn bytes, appends truncate.
          await truncate(path, committed).catch((err: unknown) => logger.error({ err, segment: path }, 'cannot truncate the torn tail'));
        }
        if (committed === 0) {
          await rm(path, { force: true });
          continue;
        }
        journal.#segments.push({ seq, path, bytes: committed, ticks: lines, minSeq: 0, sealed: true, busy: false });
        journal.#nextSeq = Math.max(journal.#nextSeq, seq + 1);
      }
    } catch (err) {
      // Not fatal at open: the journal is only needed when the database cannot keep up; appends retry later.
      logger.error({ err, dir }, 'spill journal directory is not usable; ticks will back-pressure if the database is down');
    }
    if (journal.#segments.length > 0) {
      logger.warn({ segments: journal.#segments.length, ticks: journal.ticks }, 'spill journal from an earlier run found; replaying');
    }
    return journal;
  }

  get bytes(): number {
    return this.#segments.reduce((n, s) => n + s.bytes, 0);
  }

  get ticks(): number {
    return this.#segments.reduce((n, s) => n + s.ticks, 0);
  }

  get isEmpty(): boolean {
    return this.#segments.length === 0;
  }

  /** Smallest writer sequence number still only in the journal (0 for earlier runs), or Infinity. */
  get minSeq(): number {
    return this.#segments.reduce((m, s) => Math.min(m, s.minSeq), Number.POSITIVE_INFINITY);
  }

  #active(firstSeq: number): Segment {
    const last = this.#segments[this.#segments.length - 1];
    // Never share a segment with an append in progress (close()'s synchronous append may overlap an async one).
    if (last && !last.sealed && !last.busy && last.bytes < SEGMENT_MAX_BYTES) return last;
    if (last) last.sealed = true;
    const seq = this.#nextSeq++;
    const seg: Segment = { seq, path: join(this.dir, segmentName(seq)), bytes: 0, ticks: 0, minSeq: firstSeq, sealed: false, busy: false };
    this.#segments.push(seg);
    return seg;
  }

  #committed(seg: Segment, bytes: number, count: number, firstSeq: number): void {
    seg.bytes += bytes;
    seg.ticks += count;
    seg.minSeq = Math.min(seg.minSeq, firstSeq);
  }

  #forget(seg: Segment): void {
    const i = this.#segments.indexOf(seg);
    if (i >= 0) this.#segments.splice(i, 1);
  }

  /** A segment whose first append failed holds nothing: drop it and its file (which may hold a torn line). */
  async #dropIfEmpty(seg: Segment): Promise<void> {
    if (seg.bytes !== 0) return;
    this.#forget(seg);
    await rm(seg.path, { force: true }).catch(() => undefined);
  }

  /**
   * Appends and fsyncs; done only when every byte is written and synced. `firstSeq` is the smallest writer sequence
   * number among `ticks`. Throws SpillError, after truncating whatever part of the data reached the file.
   */
  async append(ticks: readonly Tick[], firstSeq: number): Promise<void> {
    if (ticks.length === 0) return;
    const data = serialize(ticks);
    const seg = this.#active(firstSeq);
    let handle: FileHandle | undefined;
    seg.busy = true;
    try {
      await mkdir(this.dir, { recursive: true });
      handle = await open(seg.path, 'a');
      if ((await handle.stat()).size > seg.bytes) await handle.truncate(seg.bytes);
      await writeFully(handle, data);
      await handle.sync();
    } catch (err) {
      if (handle) await handle.truncate(seg.bytes).catch(() => undefined);
      await this.#dropIfEmpty(seg);
      throw appendError(seg, err);
    } finally {
      await handle?.close().catch(() => undefined);
      seg.busy = false;
    }
    this.#committed(seg, data.length, ticks.length, firstSeq);
  }

  /** Synchronous append for the last moments of close(), with the same guarantees. Throws SpillError. */
  appendSync(ticks: readonly Tick[], firstSeq: number): void {
    if (ticks.length === 0) return;
    const data = serialize(ticks);
    const seg = this.#active(firstSeq);
    let fd: number | undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      fd = openSync(seg.path, 'a');
      if (fstatSync(fd).size > seg.bytes) ftruncateSync(fd, seg.bytes);
      writeFullySync(fd, data);
      fsyncSync(fd);
    } catch (err) {
      if (fd !== undefined) {
        try {
          ftruncateSync(fd, seg.bytes);
        } catch {
          // The committed length still bounds replay and the next append.
        }
      }
      if (seg.bytes === 0) {
        this.#forget(seg);
        rmSync(seg.path, { force: true });
      }
      throw appendError(seg, err);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.#committed(seg, data.length, ticks.length, firstSeq);
  }

  /** The oldest segment to replay; seals the active one so later appends go to a new file. */
  nextForReplay(): Segment | undefined {
    const seg = this.#segments[0];
    if (!seg) return undefined;
    seg.sealed = true;
    return seg.busy ? undefined : seg;
  }

  /** Reads a segment's committed bytes in order, `chunkRows` ticks at a time; a torn tail is never read. */
  async *read(seg: Segment, chunkRows: number): AsyncGenerator<Tick[]> {
    if (seg.bytes === 0) return;
    const stream = createReadStream(seg.path, { encoding: 'utf8', start: 0, end: seg.bytes - 1 });
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    let chunk: Tick[] = [];
    let lineNo = 0;
    try {
      for await (const line of lines) {
        lineNo++;
        if (line.trim() === '') continue;
        try {
          chunk.push(JSON.parse(line) as Tick);
        } catch {
          this.#log.warn({ segment: seg.path, line: lineNo }, 'skipping unparseable spill journal line');
          continue;
        }
        if (chunk.length >= chunkRows) {
          yield chunk;
          chunk = [];
        }
      }
      if (chunk.length > 0) yield chunk;
    } finally {
      lines.close();
      stream.destroy();
    }
  }

  /** Removes a fully replayed segment. */
  async remove(seg: Segment): Promise<void> {
    await rm(seg.path, { force: true });
    this.#forget(seg);
  }
}
