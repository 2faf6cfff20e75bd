/**
 * The append-only spill journal: ticks that do not fit in memory while the database is down or slow.
 *
 * Layout: `spillDir/segment-<12-digit seq>.ndjson`, one JSON tick per line. Appends go to the newest (active)
 * segment, each append is one write + fsync. Replay reads the oldest segment in order, and the segment file is
 * removed only after all its ticks are stored; a crash in between replays it again (inserts are idempotent).
 * A torn last line (crash mid-append) is skipped with a warning.
 */
import { createReadStream } from 'node:fs';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
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

async function countLines(path: string): Promise<number> {
  let n = 0;
  const stream = createReadStream(path);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
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
        const bytes = (await stat(path)).size;
        if (bytes === 0) {
          await rm(path, { force: true });
          continue;
        }
        journal.#segments.push({ seq, path, bytes, ticks: await countLines(path), minSeq: 0, sealed: true, busy: false });
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
    if (last && !last.sealed && last.bytes < SEGMENT_MAX_BYTES) return last;
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

  #dropIfEmpty(seg: Segment): void {
    if (seg.bytes === 0) {
      const i = this.#segments.indexOf(seg);
      if (i >= 0) this.#segments.splice(i, 1);
    }
  }

  /** Appends and fsyncs. `firstSeq` is the smallest writer sequence number among `ticks`. Throws SpillError. */
  async append(ticks: readonly Tick[], firstSeq: number): Promise<void> {
    if (ticks.length === 0) return;
    const data = serialize(ticks);
    const seg = this.#active(firstSeq);
    let handle;
    seg.busy = true;
    try {
      await mkdir(this.dir, { recursive: true });
      handle = await open(seg.path, 'a');
      await handle.write(data);
      await handle.sync();
    } catch (err) {
      this.#dropIfEmpty(seg);
      throw new SpillError(`cannot append to spill journal ${seg.path}: ${(err as Error).message}`, { cause: err });
    } finally {
      await handle?.close().catch(() => undefined);
      seg.busy = false;
    }
    this.#committed(seg, data.length, ticks.length, firstSeq);
  }

  /** Synchronous append for the last moments of close(). Throws SpillError. */
  appendSync(ticks: readonly Tick[], firstSeq: number): void {
    if (ticks.length === 0) return;
    const data = serialize(ticks);
    const seg = this.#active(firstSeq);
    let fd: number | undefined;
    try {
      fd = openSync(seg.path, 'a');
      writeSync(fd, data);
      fsyncSync(fd);
    } catch (err) {
      this.#dropIfEmpty(seg);
      throw new SpillError(`cannot append to spill journal ${seg.path}: ${(err as Error).message}`, { cause: err });
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

  /** Reads a segment in order, `chunkRows` ticks at a time. */
  async *read(seg: Segment, chunkRows: number): AsyncGenerator<Tick[]> {
    const stream = createReadStream(seg.path, { encoding: 'utf8' });
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
          this.#log.warn({ segment: seg.path, line: lineNo }, 'skipping unparseable spill journal line (torn write)');
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
    const i = this.#segments.indexOf(seg);
    if (i >= 0) this.#segments.splice(i, 1);
  }
}
