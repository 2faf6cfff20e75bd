/**
 * The collector under test as a real child process, run as `npm start` runs it: the compiled build
 * (`node dist/src/main.js`, built here first with `npm run build`), via the tests' spawnCollector,
 * in its own scratch dir (pid file, stats file, spill dir), and its last stats line read from the stats file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatsLine } from '../../src/monitor/stats.ts';
import { statsFileFor } from '../../src/monitor/files.ts';
import { PROJECT_ROOT, spawnCollector } from '../../test/helpers/child-collector.ts';
import type { ChildCollector } from '../../test/helpers/child-collector.ts';

export interface CollectorProcess {
  readonly child: ChildCollector;
  readonly pid: number;
  readonly pidFile: string;
  readonly spillDir: string;
  /** The last stats line the collector wrote (every STATS_INTERVAL_MS), or null before the first. */
  stats(): StatsLine | null;
  /** SIGTERM and wait for the exit (SIGKILL after `ms`). */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let built = false;

/**
 * The node flags `npm start` gives the collector (`"start": "node <flags> dist/src/main.js"` in package.json), so a
 * benchmark runs the process exactly as a deployment does.
 */
export function npmStartNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: string } };
  const argv = (pkg.scripts?.start ?? '').trim().split(/\s+/);
  const script = argv.findIndex((a) => a.endsWith('.js'));
  if (argv[0] !== 'node' || script < 1) throw new Error(`cannot read the node flags of the start script: ${pkg.scripts?.start ?? '(none)'}`);
  return argv.slice(1, script);
}

/** Compiles src/ to dist/ once per run (scripts/build.mjs, about a second), as `npm run build` does. */
export function buildCollector(): void {
  if (built) return;
  execFileSync(process.execPath, [join(PROJECT_ROOT, 'scripts/build.mjs')], { cwd: PROJECT_ROOT, stdio: 'inherit' });
  built = true;
}

export async function startCollectorProcess(dir: string, env: Record<string, string>, startMs = 90_000): Promise<CollectorProcess> {
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, 'collector.pid');
  const spillDir = join(dir, 'spill');
  buildCollector();
  const child = spawnCollector({ METRICS_PORT: '0', STATS_INTERVAL_MS: '1000', LOG_LEVEL: 'info', PID_FILE: pidFile, SPILL_DIR: spillDir, ...env }, 'dist/src/main.js');
  const statsFile = statsFileFor(pidFile);
  try {
    await Promise.race([
      child.waitForLog((l) => l.msg === 'collector started', startMs, 'collector started'),
      child.exited.then((e) => {
        throw new Error(`collector exited during start (code ${e.code}, signal ${e.signal}): ${child.stderr.slice(-20).join('\n')}`);
      }),
    ]);
  } catch (err) {
    child.kill();
    const fatal = child.lines.filter((l) => l.level === 60 || l.level === 50).map((l) => JSON.stringify(l)).slice(-5);
    throw new Error(`${(err as Error).message}\n${fatal.join('\n')}`);
  }
  return {
    child,
    pid: child.proc.pid!,
    pidFile,
    spillDir,
    stats() {
      try {
        return JSON.parse(readFileSync(statsFile, 'utf8')) as StatsLine;
      } catch {
        return null;
      }
    },
    async stop(ms = 15_000) {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
      const timer = setTimeout(() => child.kill(), ms);
      const e = await child.exited;
      clearTimeout(timer);
      return { code: e.code, signal: e.signal };
    },
  };
}
