/** Per-process figures of another process from /proc: CPU time (utime + stime) and RSS. Linux only. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | null = null;

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`, 100 on Linux). */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The fields of a /proc stat line after the command name (field 2, which may contain spaces): from field 3 on. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime (fields 14 and 15) of a /proc stat line, in microseconds. */
function statCpuMicros(fields: readonly string[]): number {
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / clockTicksPerSecond();
}

/** CPU time (user + system) the process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  return statCpuMicros(statFields(readFileSync(`/proc/${pid}/stat`, 'utf8')));
}

/**
 * CPU time (µs) of each thread of the process, summed by thread name (/proc/<pid>/task/<tid>/stat): the main
 * thread carries the process's own name; Node's others are V8's platform workers (GC, compilation), libuv's pool
 * and the inspector's. A thread that exited meanwhile is missing.
 */
export function threadCpuMicros(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    byName.set(name, (byName.get(name) ?? 0) + statCpuMicros(statFields(stat)));
  }
  return byName;
}

/** User and system CPU time (µs) of the whole process, and its context switches (voluntary + involuntary) so far. */
export function cpuSplit(pid: number): { userUs: number; sysUs: number; switches: number } {
  const f = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  const tick = 1_000_000 / clockTicksPerSecond();
  let switches = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const m = /^voluntary_ctxt_switches:\s+(\d+)\s+^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (m) switches += Number(m[1]) + Number(m[2]);
    }
  } catch {
    // exited meanwhile: the count so far
  }
  return { userUs: Number(f[11]) * tick, sysUs: Number(f[12]) * tick, switches };
}

export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Peak RSS (VmHWM) of the process since it started. */
export function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (µs) of a process and its direct children: a PostgreSQL postmaster and its backends. */
export function treeCpuMicros(rootPid: number): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const rest = statFields(stat);
    const pid = Number(name);
    if (pid !== rootPid && Number(rest[1]) !== rootPid) continue;
    total += statCpuMicros(rest);
  }
  return total;
}

/** Busy and total CPU time of the whole machine so far (/proc/stat, clock ticks): how loaded the machine was. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Cores the whole machine kept busy between two machineTicks() readings `seconds` apart. */
export function machineCores(a: { busy: number }, b: { busy: number }, seconds: number): number {
  return (b.busy - a.busy) / clockTicksPerSecond() / seconds;
}
