/**
 * A benchmarked client as a plain `node` child process (never npm, never a shell, never tsx: /proc/<pid> is the
 * process that does the work), with optional node flags (`--cpu-prof`, V8 heap flags), its stdout read as JSON lines.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../test/helpers/child-collector.ts';
import { sleep } from '../../test/helpers/wait-for.ts';

export interface NodeProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** JSON lines printed on stdout (other lines are kept as `{ msg, unparsed: true }`). */
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last JSON line, or null before the first. */
  last(): Record<string, unknown> | null;
  waitForLine(pred: (l: Record<string, unknown>) => boolean, ms: number, what: string): Promise<void>;
  /** SIGTERM, then SIGKILL after `ms`; resolves on exit. */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Lines kept per process: a client reporting 4 times a second for 15 minutes stays well under this. */
const MAX_LINES = 10_000;

export function startNode(script: string, env: Record<string, string>, nodeFlags: readonly string[] = []): NodeProcess {
  const proc = spawn(process.execPath, [...nodeFlags, script], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const keep = <T>(list: T[], v: T) => {
    list.push(v);
    if (list.length > MAX_LINES) list.splice(0, list.length - MAX_LINES);
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      keep(lines, JSON.parse(line) as Record<string, unknown>);
    } catch {
      keep(lines, { msg: line, unparsed: true });
    }
  });
  createInterface({ input: proc.stderr! }).on('line', (line) => keep(stderr, line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc,
    pid: proc.pid!,
    lines,
    stderr,
    exited,
    last: () => lines[lines.length - 1] ?? null,
    async waitForLine(pred, ms, what) {
      const deadline = Date.now() + ms;
      while (!lines.some(pred)) {
        if (!alive()) throw new Error(`${script} exited (code ${proc.exitCode}, signal ${proc.signalCode}) while waiting for ${what}: ${stderr.slice(-10).join('\n')}`);
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (${script})`);
        await sleep(20);
      }
    },
    async stop(ms = 15_000) {
      if (alive()) proc.kill('SIGTERM');
      const killer = setTimeout(() => alive() && proc.kill('SIGKILL'), ms);
      const e = await exited;
      clearTimeout(killer);
      await sleep(0);
      return e;
    },
  };
}
