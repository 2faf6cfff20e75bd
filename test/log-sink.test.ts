/**
 * Logging can never stop the collector (issue #14 i, failure 5): real pipes whose reader stops reading, dies
 * mid-run or dies during the shutdown, and a full disk (/dev/full). In each, the writing process keeps its event
 * loop running, its memory bounded, counts the dropped lines, says so once on stderr, and exits within its bound on
 * SIGTERM. The collector itself is run the same way in test/log-sink-collector.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from './helpers/child-collector.ts';
import { waitFor } from './helpers/wait-for.ts';

interface Beat {
  readonly n: number;
  readonly rssMb: number;
  readonly dropped: number;
  readonly at: number;
}

interface Flood {
  readonly proc: ChildProcess;
  readonly beats: Beat[];
  readonly notes: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

/** A reader process on the other end of a pipe: `sleep` never reads its stdin; killing it closes the pipe. */
function deafReader(): ChildProcess {
  const reader = spawn('sleep', ['60'], { stdio: ['pipe', 'ignore', 'ignore'] });
  procs.push(reader);
  return reader;
}

function flood(stdout: number | NodeJS.WritableStream | 'pipe', env: Record<string, string> = {}): Flood {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/log-flood.ts'], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', stdout as never, 'pipe'],
  });
  procs.push(proc);
  const beats: Beat[] = [];
  const notes: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    const m = /^beat (\d+) (\d+) (\d+)$/.exec(line);
    if (m) beats.push({ n: Number(m[1]), rssMb: Number(m[2]), dropped: Number(m[3]), at: Date.now() });
    else notes.push(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { proc, beats, notes, exited };
}

/** The event loop ran throughout: no gap between beats (every 100 ms) longer than `maxGapMs`. */
function assertAlive(beats: readonly Beat[], fromIndex: number, maxGapMs: number): void {
  for (let i = fromIndex + 1; i < beats.length; i++) {
    const gap = beats[i]!.at - beats[i - 1]!.at;
    assert.ok(gap < maxGapMs, `event loop stalled ${gap} ms between beats ${beats[i - 1]!.n} and ${beats[i]!.n}`);
  }
}

async function stopWithin(f: Flood, ms: number): Promise<number> {
  const sentAt = Date.now();
  f.proc.kill('SIGTERM');
  const exit = await Promise.race([f.exited, new Promise<null>((r) => setTimeout(() => r(null), ms).unref())]);
  assert.ok(exit, `still running ${ms} ms after SIGTERM`);
  assert.equal(exit.code, 0, `exit code (stderr: ${f.notes.join(' | ')})`);
  return exit.at - sentAt;
}

const NOTE = /^market-collector: log output to stdout (is failing|failed) .*collection carries on.*market_collector_log_lines_dropped_total/;

describe('a log destination that fails never stops the process', () => {
  test('a reader that stops reading (pretty mode: the same sink): the loop runs, memory stays bounded, lines are dropped and counted; SIGTERM exits', async () => {
    const reader = deafReader();
    const f = flood(reader.stdin!, { FLOOD_PRETTY: '1' });
    reader.stdin!.destroy(); // only the child holds the write end now
    await waitFor(() => f.beats.length >= 20 && f.beats.at(-1)!.dropped > 0, 20_000, '2 s of beats with lines dropped');
    // ~8 MB/s of log lines for 2 s into a pipe nobody reads: without the bound that would all be in memory.
    assertAlive(f.beats, 5, 1_000);
    const rss = f.beats.slice(5).map((b) => b.rssMb);
    assert.ok(Math.max(...rss) - Math.min(...rss) < 40, `RSS bounded: ${Math.min(...rss)}..${Math.max(...rss)} MB`);
    assert.equal(f.notes.filter((l) => NOTE.test(l)).length, 1, `said once on stderr: ${f.notes.join(' | ')}`);
    const ms = await stopWithin(f, 3_000);
    console.log(`deaf reader: ${f.beats.at(-1)!.dropped} lines dropped; exit ${ms} ms after SIGTERM`);
    reader.kill('SIGKILL');
  });

  test('the reader dies mid-run: logging stops with EPIPE, counted; the process carries on and exits on SIGTERM', async () => {
    const reader = spawn('head', ['-c', '100000'], { stdio: ['pipe', 'ignore', 'ignore'] });
    procs.push(reader);
    const f = flood(reader.stdin!);
    reader.stdin!.destroy();
    await waitFor(() => reader.exitCode !== null, 10_000, 'the reader exits after 100 kB');
    const diedAt = f.beats.length;
    await waitFor(() => f.beats.length >= diedAt + 8, 10_000, 'beats after the reader died');
    assertAlive(f.beats, Math.max(0, diedAt - 1), 1_000);
    const dropped = f.beats.at(-1)!.dropped;
    await waitFor(() => f.beats.at(-1)!.dropped > dropped, 5_000, 'every later line counted as dropped');
    assert.ok(f.notes.some((l) => /failed \(EPIPE\)/.test(l)), `EPIPE named on stderr: ${f.notes.join(' | ')}`);
    assert.equal(f.notes.filter((l) => NOTE.test(l)).length, 1, 'said once');
    await stopWithin(f, 3_000);
  });

  test('the reader dies during the shutdown (the stuck-process case): the exit still comes within its bound', async () => {
    const reader = deafReader();
    const f = flood(reader.stdin!);
    reader.stdin!.destroy();
    await waitFor(() => (f.beats.at(-1)?.dropped ?? 0) > 0, 20_000, 'the pipe is full');
    const sentAt = Date.now();
    f.proc.kill('SIGTERM');
    setTimeout(() => reader.kill('SIGKILL'), 100); // dies while the process drains and exits
    const exit = await Promise.race([f.exited, new Promise<null>((r) => setTimeout(() => r(null), 3_000).unref())]);
    assert.ok(exit, 'still running 3 s after SIGTERM');
    assert.equal(exit.code, 0);
    console.log(`reader died during shutdown: exit ${exit.at - sentAt} ms after SIGTERM`);
  });

  test('a full disk (/dev/full: every write fails with ENOSPC): the process carries on, counts, says so once', { skip: existsSync('/dev/full') ? false : 'no /dev/full on this system' }, async () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const f = flood(fd);
      await waitFor(() => f.beats.length >= 8, 20_000, 'beats');
      assertAlive(f.beats, 3, 1_000);
      assert.ok(f.beats.at(-1)!.dropped > 1000, `lines dropped: ${f.beats.at(-1)!.dropped}`);
      assert.equal(f.notes.filter((l) => NOTE.test(l) && /ENOSPC/.test(l)).length, 1, `ENOSPC said once: ${f.notes.join(' | ')}`);
      await stopWithin(f, 3_000);
    } finally {
      closeSync(fd);
    }
  });
});
