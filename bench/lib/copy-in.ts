/**
 * `COPY ... FROM STDIN` over an ordinary pg client, without pg-copy-streams: a minimal pg Submittable that answers
 * the server's CopyInResponse with the given chunks, then CopyDone, and resolves with the row count. Used only by
 * the benchmark's COPY floor, so the floor's rows cross the same loopback socket as the collector's.
 */
import type pg from 'pg';

interface PgConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

class CopyIn {
  readonly text: string;
  readonly #chunks: readonly Buffer[];
  #rows = 0;
  #error: Error | null = null;
  readonly done: Promise<number>;
  #resolve!: (rows: number) => void;
  #reject!: (err: Error) => void;

  constructor(text: string, chunks: readonly Buffer[]) {
    this.text = text;
    this.#chunks = chunks;
    this.done = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: PgConnection): void {
    for (const c of this.#chunks) connection.sendCopyFromChunk(c);
    connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /COPY (\d+)/.exec(msg.text ?? '');
    if (m) this.#rows = Number(m[1]);
  }

  handleError(err: Error): void {
    this.#error = err;
  }

  handleReadyForQuery(): void {
    if (this.#error) this.#reject(this.#error);
    else this.#resolve(this.#rows);
  }

  // Not expected during COPY FROM; present because the client may call them.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Runs `copySql` (a `COPY ... FROM STDIN` statement) feeding it `chunks`; resolves with the rows copied. */
export function copyIn(client: pg.Client | pg.PoolClient, copySql: string, chunks: readonly Buffer[]): Promise<number> {
  const q = new CopyIn(copySql, chunks);
  (client as unknown as { query(s: unknown): unknown }).query(q);
  return q.done;
}
