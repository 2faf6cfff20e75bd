/**
 * The collector as a real child process, with its JSON log lines parsed: `node --import tsx <script.ts>` from
 * source, or plain `node <script.js>` for a compiled build (`dist/`, what `npm start` runs).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait-for.ts';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildCollector {
  readonly proc: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitForLog(pred: (l: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>>;
  kill(): void;
}

export function spawnCollector(env: Record<string, string>, script = 'src/main.ts'): ChildCollector {
  const argv = script.endsWith('.js') ? [script] : ['--import', 'tsx', script];
  const proc = spawn(process.execPath, argv, {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line, unparsed: true });
    }
  });
  createInterface({ input: proc.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return {
    proc,
    lines,
    stderr,
    exited,
    async waitForLog(pred, ms, what) {
      await waitFor(() => lines.some(pred), ms, what);
      return lines.find(pred)!;
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}
