/**
 * `npm run diagnose -- [--pid N] [--pid-file PATH] [--json]`: what a running (or misbehaving) collector holds, read
 * only from /proc and its files: FDs by type, TCP sockets by state with their remote endpoints, the CLOSE_WAIT
 * sockets, and its last stats line. Without --pid the collector is found through the pid file (--pid-file, PID_FILE,
 * or the default). Bad flags or no pid: a clear error and exit code 2.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from '../config.ts';
import { applyEnvFile } from '../env-file.ts';
import { readPidFile, statsFileFor } from '../monitor/files.ts';
import { CensusError, TCP_STATES, fdCensus, rssOf, tcpCensus } from '../monitor/resources.ts';
import type { FdCensus, TcpCensus } from '../monitor/resources.ts';

const USAGE = `usage: npm run diagnose -- [--pid N] [--pid-file PATH] [--json]
  --pid N          the process to inspect (default: the pid in the pid file)
  --pid-file PATH  the collector's pid file (default: $PID_FILE or ${DEFAULTS.PID_FILE});
                   its stats file <PATH>.stats.json holds the last stats line
  --json           print one JSON object instead of tables`;

export class UsageError extends Error {}

export interface DiagnoseArgs {
  readonly pid: number;
  readonly pidSource: string;
  readonly pidFile: string;
  readonly json: boolean;
}

export function parseDiagnoseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DiagnoseArgs | 'help' {
  let values: { pid?: string; 'pid-file'?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { pid: { type: 'string' }, 'pid-file': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const pidFile = values['pid-file'] ?? (env.PID_FILE?.trim() || DEFAULTS.PID_FILE);
  if (values.pid !== undefined) {
    if (!/^\d+$/.test(values.pid) || Number(values.pid) < 1) throw new UsageError(`--pid expects a positive integer, got ${JSON.stringify(values.pid)}`);
    return { pid: Number(values.pid), pidSource: '--pid', pidFile, json: values.json ?? false };
  }
  if (!existsSync(pidFile)) throw new UsageError(`no pid file at ${pidFile}: is the collector running? Pass --pid N or --pid-file PATH`);
  const pid = readPidFile(pidFile);
  if (pid === null) throw new UsageError(`the pid file ${pidFile} does not hold a pid`);
  return { pid, pidSource: pidFile, pidFile, json: values.json ?? false };
}

/** Pads columns to their widest cell; numbers right-aligned. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [headers.map(String), ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const fmt = (r: readonly string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(cells[0]!), fmt(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(fmt)].map((l) => `  ${l}`).join('\n');
}

interface StatsFile {
  readonly path: string;
  readonly ageMs: number;
  readonly line: Record<string, unknown> | null;
  readonly error?: string;
}

function readStatsFile(pidFile: string): StatsFile | null {
  const path = statsFileFor(pidFile);
  if (!existsSync(path)) return null;
  try {
    const ageMs = Date.now() - statSync(path).mtimeMs;
    return { path, ageMs, line: JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> };
  } catch (err) {
    return { path, ageMs: 0, line: null, error: String(err) };
  }
}

function mb(bytes: unknown): string {
  return typeof bytes === 'number' ? `${(bytes / 1_048_576).toFixed(1)} MB` : '-';
}

function seconds(ms: unknown): string {
  return typeof ms === 'number' ? `${(ms / 1000).toFixed(1)}s` : '-';
}

function nonZero(rec: unknown): string {
  if (!rec || typeof rec !== 'object') return '-';
  const parts = Object.entries(rec as Record<string, number>).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(' ') : '0';
}

function kv(obj: unknown, keys?: readonly string[]): string {
  if (!obj || typeof obj !== 'object') return '  (none)';
  const entries = Object.entries(obj as Record<string, unknown>).filter(([k]) => !keys || keys.includes(k));
  return table(['field', 'value'], entries.map(([k, v]) => [k, typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)]));
}

function renderStats(stats: StatsFile | null, pid: number): string[] {
  if (!stats) return ['Last stats line: no stats file (the monitor writes one per STATS_INTERVAL_MS next to the pid file)'];
  if (!stats.line) return [`Last stats line: ${stats.path} unreadable: ${stats.error}`];
  const l = stats.line;
  const out = [`Last stats line (${stats.path}, taken ${String(l.at)}, ${seconds(stats.ageMs)} ago${l.pid !== pid ? `; written by pid ${String(l.pid)}, not ${pid}` : ''})`];
  const conns = (Array.isArray(l.connections) ? l.connections : []) as Array<Record<string, any>>;
  out.push('', 'Connections', table(
    ['exchange', 'connId', 'state', 'uptime', 'reconnects', 'in interval', 'by reason', 'backoff ms', 'frames', 'ticks', 'rejected'],
    conns.map((c) => [String(c.exchange), String(c.connId), String(c.state), seconds(c.uptimeMs), Number(c.reconnects?.total ?? 0), Number(c.reconnects?.interval ?? 0),
      nonZero(c.reconnects?.byReason), Number(c.lastBackoffMs ?? 0), Number(c.frames ?? 0), Number(c.ticks ?? 0), nonZero(c.rejected)]),
  ));
  if (l.pipeline) out.push('', 'Pipeline', kv(l.pipeline));
  if (l.pool) out.push('', 'Pool', kv(l.pool));
  if (l.gaps) out.push('', 'Gaps', kv(l.gaps));
  const proc = (l.process ?? {}) as Record<string, unknown>;
  out.push('', 'Process (at that time)', table(['field', 'value'], [
    ['rss', mb(proc.rssBytes)], ['heap used', mb(proc.heapUsedBytes)], ['event-loop delay p99', `${String(proc.eventLoopDelayP99Ms ?? '-')} ms`],
    ['fds', nonZero(proc.fds)], ['tcp', nonZero(proc.tcp)],
  ]));
  const alarms = Array.isArray(l.alarms) ? (l.alarms as string[]) : [];
  out.push('', `Active alarms: ${alarms.length ? alarms.join(', ') : 'none'}`);
  return out;
}

export function renderReport(args: DiagnoseArgs, fds: FdCensus, tcp: TcpCensus, stats: StatsFile | null): string {
  const out: string[] = [];
  out.push(`market-collector diagnose: pid ${args.pid} (from ${args.pidSource}) at ${new Date().toISOString()}`);
  out.push(`RSS ${mb(rssOf(args.pid))}`);
  out.push('', `File descriptors (${fds.total} open)`, table(['type', 'count'], Object.entries(fds.byType).map(([t, n]) => [t, n])));
  const states = TCP_STATES.filter((s) => tcp.byState[s] > 0);
  out.push('', `TCP sockets by state (${tcp.sockets.length})`, states.length ? table(['state', 'count'], states.map((s) => [s, tcp.byState[s]])) : '  (none)');
  const order = (s: string) => TCP_STATES.indexOf(s as (typeof TCP_STATES)[number]);
  const sockets = [...tcp.sockets].sort((a, b) => order(a.state) - order(b.state) || a.remote.localeCompare(b.remote));
  if (sockets.length) out.push('', 'TCP sockets', table(['state', 'remote', 'local', 'inode'], sockets.map((s) => [s.state, s.remote, s.local, s.inode])));
  const closeWait = sockets.filter((s) => s.state === 'CLOSE_WAIT');
  out.push('', `CLOSE_WAIT sockets (${closeWait.length})${closeWait.length ? ': the peer closed and the collector has not' : ': none'}`);
  if (closeWait.length) out.push(table(['remote', 'local', 'inode'], closeWait.map((s) => [s.remote, s.local, s.inode])));
  out.push('', ...renderStats(stats, args.pid));
  return `${out.join('\n')}\n`;
}

export function diagnose(argv: readonly string[], io: { out: (s: string) => void; err: (s: string) => void } = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }, env: NodeJS.ProcessEnv = process.env): number {
  let args: DiagnoseArgs | 'help';
  try {
    args = parseDiagnoseArgs(argv, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`diagnose: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    io.out(`${USAGE}\n`);
    return 0;
  }
  let fds: FdCensus;
  let tcp: TcpCensus;
  try {
    fds = fdCensus(args.pid);
    tcp = tcpCensus(args.pid, fds);
  } catch (err) {
    if (!(err instanceof CensusError)) throw err;
    io.err(`diagnose: ${err.message}\n`);
    return err.code === 'NO_PROCESS' ? 2 : 1;
  }
  const stats = readStatsFile(args.pidFile);
  if (args.json) {
    io.out(`${JSON.stringify({ pid: args.pid, fds: { total: fds.total, ...fds.byType }, tcp: { byState: tcp.byState, sockets: tcp.sockets }, rssBytes: rssOf(args.pid), stats: stats?.line ?? null })}\n`);
  } else {
    io.out(renderReport(args, fds, tcp, stats));
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  applyEnvFile(process.env); // PID_FILE may be set there, as for the collector
  process.exitCode = diagnose(process.argv.slice(2));
}
