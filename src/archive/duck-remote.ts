/**
 * DuckDB in a child process (duck-child.ts), for the collector's archiver: DuckDB's memory (its cap plus the
 * allocator's arenas) stays out of the collector's process and is all given back when the export ends, and its CPU
 * runs at the lowest priority (nice 19).
 * Statements and rows cross the IPC channel (advanced serialization: bigints survive); rows are small (figures,
 * never ticks: the data itself goes through files).
 */
import { fork } from 'node:child_process';
import { setPriority } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArchiveError } from './archive-error.ts';
import type { Duck, DuckFactory, OpenDuckOptions } from './duck.ts';

export type DuckRequest =
  | { readonly id: number; readonly op: 'open'; readonly opts: OpenDuckOptions }
  | { readonly id: number; readonly op: 'run' | 'rows'; readonly sql: string }
  | { readonly id: number; readonly op: 'close' };
export type DuckReply = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly error: string };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** nice(1) value of the DuckDB child. */
const DUCKDB_NICE = 19;
/** A child that does not exit this long after close() is killed. */
const CLOSE_GRACE_MS = 5_000;

/** The child's entry, beside this file with the same extension (.ts from source under tsx, .js when compiled). */
const CHILD = fileURLToPath(new URL(`./duck-child${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** This process's loader flags (tsx's --import), without test-runner or inspector flags. */
function loaderArgs(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (['--import', '--require', '-r', '--loader', '--experimental-loader'].includes(a) && argv[i + 1] !== undefined) out.push(a, argv[++i]!);
    else if (/^--(import|require|loader|experimental-loader)=/.test(a)) out.push(a);
  }
  return out;
}

export const openRemoteDuck: DuckFactory = async (opts = {}) => {
  const child: ChildProcess = fork(CHILD, [], { execArgv: loaderArgs(), serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  // Lowest CPU priority: DuckDB's parsing and compression get the cores only when the collector and PostgreSQL
  // leave them idle.
  try {
    if (child.pid !== undefined) setPriority(child.pid, DUCKDB_NICE);
  } catch {
    // not permitted here: run at normal priority
  }
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2_000)));
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      for (const p of pending.values()) p.reject(new ArchiveError(`DuckDB worker exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
      pending.clear();
      resolve();
    });
  });
  child.on('error', () => undefined); // reported through 'exit'
  child.on('message', (r: DuckReply) => {
    const p = pending.get(r.id);
    if (!p) return;
    pending.delete(r.id);
    if ('error' in r) p.reject(new ArchiveError(`DuckDB: ${r.error}`));
    else p.resolve(r.value);
  });
  const call = (req: DistributiveOmit<DuckRequest, 'id'>): Promise<unknown> => {
    if (exited) return Promise.reject(new ArchiveError('DuckDB worker is gone'));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.send({ ...req, id } as DuckRequest);
    });
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      if (!exited) await call({ op: 'close' }).catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
      await exit;
      clearTimeout(timer);
    })());
  try {
    await call({ op: 'open', opts });
  } catch (err) {
    await close();
    throw err;
  }
  return {
    run: async (sql) => (await call({ op: 'run', sql })) as number,
    rows: async (sql) => (await call({ op: 'rows', sql })) as unknown[][],
    close,
  };
};
