/**
 * The stats line for people (LOG_PRETTY=1): a few lines instead of the ~200 pino-pretty makes of the JSON object.
 * One line per connection (state, rates, reconnects by reason in this interval, rejects), one for the pipeline,
 * one for pool, gaps and the process, one for alarms. The JSON line stays the complete record.
 * Works on the parsed JSON (the pretty formatter only has that); a missing part is left out, never an error.
 */
import type { StatsLine } from './stats.ts';

type Loose<T> = { readonly [K in keyof T]?: T[K] extends object ? Loose<T[K]> : T[K] };

function n(v: unknown, digits = 0): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';
}

function duration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `close 1, error 2` for the non-zero entries of a count map; `-` when all are zero. */
function nonZero(rec: unknown): string {
  if (!rec || typeof rec !== 'object') return '-';
  const parts = Object.entries(rec as Record<string, unknown>).filter(([, v]) => typeof v === 'number' && v > 0).map(([k, v]) => `${k} ${String(v)}`);
  return parts.length ? parts.join(', ') : '-';
}

function mb(bytes: unknown): string {
  return typeof bytes === 'number' ? `${n(bytes / 1_048_576)} MB` : '-';
}

export function statsText(line: Loose<StatsLine> | Record<string, unknown>): string[] {
  const l = line as Loose<StatsLine>;
  const secs = typeof l.intervalMs === 'number' && l.intervalMs > 0 ? l.intervalMs / 1000 : null;
  const rate = (count: unknown) => (secs && typeof count === 'number' ? `${n(count / secs, 1)}/s` : '-');
  const out: string[] = [];
  for (const c of Array.isArray(l.connections) ? l.connections : []) {
    const r = c.reconnects;
    const rejectedNow = nonZero(c.rejected);
    out.push(
      `${String(c.exchange)}/${String(c.connId)} ${String(c.state)}${c.state === 'live' ? ` ${duration(c.uptimeMs)}` : ''}` +
        (c.state !== 'live' && typeof c.cause === 'string' ? ` (${c.cause})` : '') +
        ` · ticks ${rate(c.ticks)} · reconnects ${n(r?.interval)} in interval${r?.interval ? ` (${nonZero(r.intervalByReason)})` : ''}, ${n(r?.total)} total` +
        (rejectedNow === '-' ? '' : ` · rejected ${rejectedNow}`),
    );
  }
  const p = l.pipeline;
  if (p) {
    out.push(
      `pipeline ${n(p.ticksReceivedPerSec, 1)}/s in, ${n(p.ticksStoredPerSec, 1)}/s stored · buffer ${n(p.bufferDepth)}/${n(p.bufferMax)}` +
        ` · journal ${n(p.journalTicks)} ticks · batch p50 ${n(p.batchLatencyMs?.p50, 1)} ms p99 ${n(p.batchLatencyMs?.p99, 1)} ms` +
        ` · write errors ${n(p.writeErrors)}${p.backpressure ? ' · BACKPRESSURE' : ''}` +
        (typeof p.ticksAwaitingJournal === 'number' && p.ticksAwaitingJournal > 0 ? ` · ${n(p.ticksAwaitingJournal)} held in memory for the journal` : '') +
        (typeof p.ticksConflicting === 'number' && p.ticksConflicting > 0 ? ` · ${n(p.ticksConflicting)} conflicting` : '') +
        (typeof p.ticksOutOfOrder === 'number' && p.ticksOutOfOrder > 0 ? ` · ${n(p.ticksOutOfOrder)} out of order` : ''),
    );
  }
  const parts: string[] = [];
  if (l.pool) parts.push(`pool ${n(l.pool.total)}/${n(l.pool.max)} (idle ${n(l.pool.idle)}, waiting ${n(l.pool.waiting)})`);
  if (l.gaps) parts.push(`gaps ${n(l.gaps.detected)} detected, ${n(l.gaps.open)} open, ${n(l.gaps.filled)} filled, ${n(l.gaps.unfillable)} unfillable`);
  const proc = l.process;
  if (proc) {
    if (proc.fds) parts.push(`fds ${n(proc.fds.total)}`);
    if (proc.tcp) parts.push(`tcp ${nonZero(proc.tcp)}`);
    parts.push(`rss ${mb(proc.rssBytes)}`, `loop p99 ${n(proc.eventLoopDelayP99Ms, 1)} ms`);
  }
  if (parts.length) out.push(parts.join(' · '));
  const alarms = Array.isArray(l.alarms) ? l.alarms : [];
  out.push(`alarms: ${alarms.length ? alarms.join(', ') : 'none'}`);
  return out;
}
