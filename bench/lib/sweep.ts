/**
 * The rate sweep: one collector held at rising total rates until one is not sustained, read from its own stats
 * file (STATS_INTERVAL_MS=1000). Sustained = stored ≥ 97% of emitted, buffer slope < 2% of the rate per second,
 * nothing journaled; past its limit the buffer stays bounded while the backlog piles up in the sockets in front of
 * it, hence the stored-vs-emitted test.
 */
import { join } from 'node:path';
import type { ExchangeSimulator } from '../../src/simulator/index.ts';
import { sleep, waitFor } from '../../test/helpers/wait-for.ts';
import { startCollectorProcess } from './collector-proc.ts';
import type { CollectorProcess } from './collector-proc.ts';
import { emptyTicks } from './database.ts';
import { collectorEnv, emittedTotal, perSymbol } from './feed-setup.ts';
import { fmtInt, round, slope } from './stats.ts';

export const SUSTAIN_STORED_RATIO = 0.97;
export const SUSTAIN_BUFFER_SLOPE = 0.02;

export interface SweepStep {
  readonly rate: number;
  readonly emittedPerSec: number;
  readonly storedPerSec: number;
  readonly bufferEnd: number;
  readonly bufferMax: number;
  readonly bufferSlopePerSec: number;
  readonly journalTicks: number;
  readonly sustained: boolean;
}

export interface SweepOptions {
  readonly sim: ExchangeSimulator;
  readonly databaseUrl: string;
  readonly scratch: string;
  readonly steps: readonly number[];
  readonly seconds: number;
  say(msg: string): void;
}

export interface SweepResult {
  readonly steps: SweepStep[];
  readonly collectorExit: string;
}

export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  o.sim.setRate(perSymbol(o.steps[0]!));
  await emptyTicks(o.databaseUrl);
  o.say('sweep: starting a collector that writes its stats every second');
  const col = await startCollectorProcess(join(o.scratch, 'sweep'), collectorEnv(o.sim, o.databaseUrl));
  let exit: string | null = null;
  try {
    await waitFor(() => (col.stats()?.pipeline?.ticksStored ?? 0) > 0, 30_000, 'ticks stored');
    const steps = await climb(o, col);
    o.sim.setRate(0);
    const e = await col.stop();
    exit = e.signal ? `signal ${e.signal}` : `code ${e.code}`;
    return { steps, collectorExit: exit };
  } finally {
    if (exit === null) await col.stop().catch(() => {});
  }
}

/** Steps up until one is not sustained, then tries once halfway between the last sustained step and that one. */
async function climb(o: SweepOptions, col: CollectorProcess): Promise<SweepStep[]> {
  const steps: SweepStep[] = [];
  let lastOk = 0;
  for (const rate of o.steps) {
    const step = await runStep(o, col, rate);
    steps.push(step);
    if (step.sustained) {
      lastOk = rate;
      continue;
    }
    const mid = Math.round((lastOk + rate) / 2 / 1000) * 1000;
    if (lastOk > 0 && mid > lastOk && mid < rate && (rate - lastOk) / lastOk > 0.15) {
      await drain(o, col);
      steps.push(await runStep(o, col, mid));
    }
    break;
  }
  return steps;
}

async function runStep(o: SweepOptions, col: CollectorProcess, rate: number): Promise<SweepStep> {
  o.say(`sweep: ${fmtInt(rate)} ticks/s for ${o.seconds} s`);
  o.sim.setRate(perSymbol(rate));
  const settle = Math.min(5, Math.max(1, o.seconds / 6));
  await sleep(settle * 1000);
  const t0 = Date.now();
  const e0 = emittedTotal(o.sim);
  const s0 = col.stats();
  const xs: number[] = [];
  const depth: number[] = [];
  let journal = 0;
  for (let i = 0; i < o.seconds; i++) {
    await sleep(1000);
    const st = col.stats();
    xs.push((Date.now() - t0) / 1000);
    depth.push(st?.pipeline?.bufferDepth ?? 0);
    journal = Math.max(journal, st?.pipeline?.journalTicks ?? 0);
  }
  const t1 = Date.now();
  const e1 = emittedTotal(o.sim);
  const s1 = col.stats();
  const emittedPerSec = (e1 - e0) / ((t1 - t0) / 1000);
  const storedSpanS = s0 && s1 ? (Date.parse(s1.at) - Date.parse(s0.at)) / 1000 : NaN;
  const storedPerSec = s0 && s1 ? ((s1.pipeline?.ticksStored ?? 0) - (s0.pipeline?.ticksStored ?? 0)) / storedSpanS : 0;
  const bufferSlopePerSec = slope(xs, depth);
  const sustained = storedPerSec >= SUSTAIN_STORED_RATIO * emittedPerSec && bufferSlopePerSec < SUSTAIN_BUFFER_SLOPE * emittedPerSec && journal === 0;
  const step = { rate, emittedPerSec, storedPerSec, bufferEnd: depth[depth.length - 1] ?? 0, bufferMax: Math.max(0, ...depth), bufferSlopePerSec, journalTicks: journal, sustained };
  o.say(`  emitted ${fmtInt(step.emittedPerSec)}/s stored ${fmtInt(step.storedPerSec)}/s buffer end ${fmtInt(step.bufferEnd)} slope ${round(step.bufferSlopePerSec)}/s → ${step.sustained ? 'sustained' : 'NOT sustained'}`);
  return step;
}

/** Let the collector catch up after a step it could not sustain (its backlog would spoil the next one). */
async function drain(o: SweepOptions, col: CollectorProcess): Promise<void> {
  const rate = Math.min(o.steps[0]!, 20_000);
  o.sim.setRate(perSymbol(rate));
  await sleep(3000);
  // Drained: the buffer is small and the collector stores no faster than the stream (no backlog left in the sockets).
  let calm = 0;
  await waitFor(() => {
    const p = col.stats()?.pipeline;
    calm = p && p.bufferDepth < 1000 && p.ticksStoredPerSec <= 1.1 * rate ? calm + 1 : 0;
    return calm >= 3;
  }, 60_000, 'backlog drained', 1000).catch(() => o.say('  backlog not drained within 60 s'));
}
