/**
 * Where log lines go: a destination that may fail but can never stop the collector.
 *
 * pino's default destination (sonic-boom) is the wrong tool here, measured: with stdout a pipe whose reader stops
 * reading, it buffers without a bound (async mode), and at `process.exit()` its exit hook calls `flushSync()`,
 * which retries a failing write every 100 ms for ever; when the reader then dies the retries get EPIPE, still for
 * ever, inside process.exit, where no timer and no signal handler can run any more (issue #14, failure 5).
 *
 * This sink instead:
 *  - writes to a pipe or socket through a non-blocking libuv stream (net.Socket on the fd), so a reader that stops
 *    reading never blocks the event loop; at most MAX_PENDING_BYTES wait in memory, beyond that lines are dropped
 *    and counted;
 *  - writes to a file, a terminal or a character device with one writeSync per line; an error (ENOSPC on a full
 *    disk, EAGAIN on a non-blocking fd, EIO) drops that line, counted, and the next line tries again;
 *  - after EPIPE (the reader is gone) drops every later line, counted;
 *  - never throws, never keeps the process alive (the stream is unref'd), and `drain(ms)` is bounded;
 *  - says once on stderr that lines are being dropped, and that collection carries on.
 * The process-wide count of dropped lines is on /metrics (`market_collector_log_lines_dropped_total`).
 */
import { fstatSync, writeSync } from 'node:fs';
import net from 'node:net';

/** Log bytes allowed to wait for a slow reader; beyond this, lines are dropped (and counted). */
export const MAX_PENDING_BYTES = 1_048_576;

const totals = { dropped: 0 };

/** Log lines dropped by every sink of this process since it started (a counter for /metrics). */
export function droppedLogLines(): number {
  return totals.dropped;
}

/** Log bytes waiting for slow readers, over every sink (a gauge for /metrics: > 0 means stdout is behind). */
export function pendingLogBytes(): number {
  let n = 0;
  for (const s of streams.values()) if (s && !s.destroyed) n += s.writableLength;
  return n;
}

/** Waits until every sink has written what it holds, or `timeoutMs` has passed. Never rejects. */
export async function drainLogs(timeoutMs: number): Promise<void> {
  await Promise.all([...streams.values()].map((s) => (s ? drainStream(s, timeoutMs) : undefined)));
}

export interface LogSinkOptions {
  /** Default 1 (stdout). */
  readonly fd?: number;
  readonly maxPendingBytes?: number;
  /** Turns a JSON line into the text written (pretty mode). If it throws, the JSON line is written as it is. */
  readonly format?: (line: string) => string;
  /** Where the one-time note goes (default 2, stderr); null: nowhere. */
  readonly noteFd?: number | null;
  /** Name of the destination in the note (default "stdout"). */
  readonly name?: string;
}

type Writer =
  | { readonly kind: 'stream'; readonly socket: net.Socket }
  | { readonly kind: 'sync' };

function streamFor(fd: number): net.Socket | null {
  try {
    const st = fstatSync(fd);
    if (!st.isFIFO() && !st.isSocket()) return null;
    const socket = new net.Socket({ fd, readable: false, writable: true });
    socket.unref();
    return socket;
  } catch {
    return null; // not a pipe libuv can take: fall back to plain writes
  }
}

const streams = new Map<number, net.Socket | null>();

/**
 * One non-blocking stream per fd for the whole process (kept, never ended), shared by every sink on it (several
 * loggers on stdout must not interleave partial writes) and by the stderr note; null when the fd is not a pipe.
 */
function sharedStream(fd: number): net.Socket | null {
  if (!streams.has(fd)) {
    const s = streamFor(fd);
    s?.setMaxListeners(0);
    s?.on('error', () => undefined);
    streams.set(fd, s);
  }
  return streams.get(fd) ?? null;
}

function drainStream(socket: net.Socket, timeoutMs: number): Promise<void> {
  if (socket.destroyed || socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('drain', done).off('close', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, timeoutMs));
    timer.unref();
    socket.on('drain', done).on('close', done);
  });
}

/** One write(2) loop for a whole buffer; throws the first error. A write of 0 bytes counts as EAGAIN. */
function writeAllSync(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    const n = writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw Object.assign(new Error('write returned 0'), { code: 'EAGAIN' });
    off += n;
  }
}

export class LogSink {
  readonly #fd: number;
  readonly #max: number;
  readonly #format: ((line: string) => string) | undefined;
  readonly #noteFd: number | null;
  readonly #name: string;
  readonly #writer: Writer;
  #dead: string | null = null;
  #noted = false;
  #dropped = 0;
  /** Lines handed to the stream and not yet confirmed written. */
  #inflight = 0;

  constructor(opts: LogSinkOptions = {}) {
    this.#fd = opts.fd ?? 1;
    this.#max = opts.maxPendingBytes ?? MAX_PENDING_BYTES;
    this.#format = opts.format;
    this.#noteFd = opts.noteFd === undefined ? 2 : opts.noteFd;
    this.#name = opts.name ?? (this.#fd === 1 ? 'stdout' : `fd ${this.#fd}`);
    const socket = sharedStream(this.#fd);
    this.#writer = socket ? { kind: 'stream', socket } : { kind: 'sync' };
    if (socket?.destroyed) this.#dead = 'closed';
    else if (socket) {
      socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? err.message));
      socket.on('close', () => this.#fail('closed'));
    }
  }

  /** Lines this sink dropped. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Why the destination is dead (EPIPE...), or null while it takes lines. */
  get failure(): string | null {
    return this.#dead;
  }

  /** Bytes waiting for the reader. */
  get pendingBytes(): number {
    return this.#writer.kind === 'stream' && !this.#dead ? this.#writer.socket.writableLength : 0;
  }

  /** pino's destination interface. Never throws, never blocks on a slow reader. */
  write(line: string): void {
    if (this.#dead) return this.#drop(1, null);
    let text = line;
    if (this.#format) {
      try {
        text = this.#format(line);
      } catch {
        text = line;
      }
    }
    if (this.#writer.kind === 'stream') {
      const { socket } = this.#writer;
      if (socket.writableLength + text.length > this.#max) return this.#drop(1, `the reader is not keeping up (${this.#max} bytes waiting)`);
      this.#inflight++;
      socket.write(text, (err) => {
        this.#inflight--;
        if (err) this.#drop(1, null);
      });
      return;
    }
    try {
      writeAllSync(this.#fd, text);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === 'EPIPE' || code === 'EBADF') this.#fail(code);
      this.#drop(1, code);
    }
  }

  /** Resolves once everything handed over is written, the destination is dead, or `timeoutMs` passed. */
  drain(timeoutMs: number): Promise<void> {
    return this.#writer.kind === 'stream' && !this.#dead ? drainStream(this.#writer.socket, timeoutMs) : Promise.resolve();
  }

  #fail(reason: string): void {
    if (this.#dead) return;
    this.#dead = reason;
    if (this.#writer.kind === 'stream') {
      // The lines still queued are lost with the reader; their write callbacks count them.
      this.#writer.socket.destroy();
    }
    this.#note(`log output to ${this.#name} failed (${reason})`);
  }

  #drop(lines: number, why: string | null): void {
    this.#dropped += lines;
    totals.dropped += lines;
    if (why !== null) this.#note(`log output to ${this.#name} is failing (${why})`);
  }

  /** Once per sink: say what happens, on stderr, without ever blocking or throwing. */
  #note(what: string): void {
    if (this.#noted || this.#noteFd === null) return;
    this.#noted = true;
    const text = `market-collector: ${what}; collection carries on; log lines that cannot be written are dropped and counted (market_collector_log_lines_dropped_total on /metrics)\n`;
    const socket = this.#noteFd === this.#fd ? null : sharedStream(this.#noteFd);
    if (socket?.destroyed) return;
    if (socket) {
      socket.write(text);
      return;
    }
    try {
      writeAllSync(this.#noteFd, text);
    } catch {
      // stderr is gone too: nothing left to tell
    }
  }
}
