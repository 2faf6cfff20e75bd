/**
 * Resource census read straight from /proc: open file descriptors by type, the process's own TCP sockets by state
 * (matched through socket inodes, so sockets of other processes in the namespace are left out), RSS and heap.
 * Works for this process and for another pid (the diagnose command). Everything here is synchronous and only reads.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';

/**
 * Event-loop delay sampling period. Each sample is a libuv timer wake-up (ours and prom-client's histograms are
 * enabled in the same tick, so their timers fire together): at 10 ms (Node's default) those were 100 of the ~200
 * wake-ups per second of an idle collector, at 50 ms they were 20 of its 22 and nearly all of its idle CPU (3 ms/s on
 * the 2-core AMD EPYC VM, ~135 µs per wake-up). A stall longer than this is always seen, within this much of its
 * length (the alarm's default threshold is 200 ms).
 */
export const LOOP_DELAY_RESOLUTION_MS = 100;

export type FdType = 'socket' | 'file' | 'pipe' | 'other';
export const FD_TYPES: readonly FdType[] = ['socket', 'file', 'pipe', 'other'];

export interface FdCensus {
  readonly pid: number;
  readonly total: number;
  readonly byType: Readonly<Record<FdType, number>>;
  /** Inodes of the socket FDs (`socket:[inode]`), to match against /proc/net/tcp. */
  readonly socketInodes: ReadonlySet<number>;
}

/** Linux TCP states as /proc/net/tcp prints them (hex `st` column). */
export const TCP_STATES = [
  'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK',
  'LISTEN', 'CLOSING', 'NEW_SYN_RECV',
] as const;
export type TcpState = (typeof TCP_STATES)[number] | 'UNKNOWN';

export interface TcpSocket {
  readonly inode: number;
  readonly state: TcpState;
  /** `host:port`; IPv6 hosts in brackets, e.g. `[::1]:443`. */
  readonly local: string;
  readonly remote: string;
  readonly family: 4 | 6;
}

export interface TcpCensus {
  readonly pid: number;
  readonly byState: Readonly<Record<TcpState, number>>;
  readonly sockets: readonly TcpSocket[];
}

export interface ProcessCensus {
  /** False where /proc is missing: fds and tcp are then null. */
  readonly procAvailable: boolean;
  readonly fds: FdCensus | null;
  readonly tcp: TcpCensus | null;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
}

/** Thrown when /proc cannot be read for a pid (missing /proc, no such process, or no permission). */
export class CensusError extends Error {
  readonly code: 'NO_PROC' | 'NO_PROCESS' | 'NO_PERMISSION' | 'READ_FAILED';
  constructor(code: CensusError['code'], message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CensusError';
    this.code = code;
  }
}

export function procAvailable(): boolean {
  return existsSync('/proc/self/fd');
}

function procDir(pid?: number): string {
  return pid === undefined ? '/proc/self' : `/proc/${pid}`;
}

function censusError(pid: number | undefined, what: string, err: unknown): CensusError {
  const code = (err as { code?: string }).code;
  const who = pid === undefined ? 'this process' : `pid ${pid}`;
  if (!procAvailable()) return new CensusError('NO_PROC', `/proc is not available on this system; cannot read ${what}`, err);
  if (code === 'ENOENT' || code === 'ESRCH') return new CensusError('NO_PROCESS', `no process ${who} (${what} not found)`, err);
  if (code === 'EACCES' || code === 'EPERM') return new CensusError('NO_PERMISSION', `no permission to read ${what} of ${who}`, err);
  return new CensusError('READ_FAILED', `cannot read ${what} of ${who}: ${String(err)}`, err);
}

const SOCKET_RE = /^socket:\[(\d+)\]$/;

/** Classifies one `readlink(/proc/<pid>/fd/N)` target. */
export function classifyFdTarget(target: string): { type: FdType; inode?: number } {
  const m = SOCKET_RE.exec(target);
  if (m) return { type: 'socket', inode: Number(m[1]) };
  if (target.startsWith('pipe:')) return { type: 'pipe' };
  if (target.startsWith('/')) return { type: 'file' };
  return { type: 'other' }; // anon_inode:[eventfd], anon_inode:[eventpoll], [timerfd], ...
}

/** Open FDs of `pid` (default: this process) by type. Throws CensusError when /proc cannot be read. */
export function fdCensus(pid?: number): FdCensus {
  const dir = `${procDir(pid)}/fd`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw censusError(pid, dir, err);
  }
  const byType: Record<FdType, number> = { socket: 0, file: 0, pipe: 0, other: 0 };
  const socketInodes = new Set<number>();
  let total = 0;
  for (const name of names) {
    let target: string;
    try {
      target = readlinkSync(`${dir}/${name}`);
    } catch {
      continue; // closed between readdir and readlink (e.g. the directory handle readdir itself used)
    }
    const c = classifyFdTarget(target);
    byType[c.type] += 1;
    total += 1;
    if (c.inode !== undefined) socketInodes.add(c.inode);
  }
  return { pid: pid ?? process.pid, total, byType, socketInodes };
}

function stateName(hex: string): TcpState {
  const n = Number.parseInt(hex, 16);
  return TCP_STATES[n - 1] ?? 'UNKNOWN';
}

/**
 * /proc/net/tcp prints each 32-bit word of the address as the kernel holds it (network order read as a host-order
 * integer, printed %08X). On little-endian hosts the bytes of each word therefore appear reversed.
 */
function wordBytes(hex8: string, littleEndian: boolean): number[] {
  const bytes = [0, 2, 4, 6].map((i) => Number.parseInt(hex8.slice(i, i + 2), 16));
  return littleEndian ? bytes.reverse() : bytes;
}

function formatIpv6(bytes: number[]): string {
  const isV4Mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isV4Mapped) return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Compress the longest run of zero groups (length >= 2), RFC 5952.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Decodes `0100007F:1F90` (IPv4) or a 32-hex-digit IPv6 address with port into `127.0.0.1:8080` / `[::1]:8080`. */
export function decodeEndpoint(field: string, littleEndian = endianness() === 'LE'): string {
  const [addr = '', portHex = '0'] = field.split(':');
  const port = Number.parseInt(portHex, 16);
  if (addr.length === 8) return `${wordBytes(addr, littleEndian).join('.')}:${port}`;
  if (addr.length === 32) {
    const bytes: number[] = [];
    for (let w = 0; w < 32; w += 8) bytes.push(...wordBytes(addr.slice(w, w + 8), littleEndian));
    return `[${formatIpv6(bytes)}]:${port}`;
  }
  return field;
}

/**
 * Parses the text of /proc/<pid>/net/tcp or tcp6. Rows with inode 0 (TIME_WAIT, orphans) have no owner. With `only`,
 * just the rows of those inodes: the table lists every socket of the network namespace (on a busy host hundreds) and
 * the census wants the handful this process owns, so each is found by searching for its inode and only candidate
 * lines are split and decoded.
 */
export function parseProcNetTcp(text: string, family: 4 | 6, littleEndian = endianness() === 'LE', only?: ReadonlySet<number>): TcpSocket[] {
  const out: TcpSocket[] = [];
  if (only) {
    for (const inode of only) {
      const row = findRow(text, inode, family, littleEndian);
      if (row) out.push(row);
    }
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const row = parseRow(line, family, littleEndian);
    if (row) out.push(row);
  }
  return out;
}

function parseRow(line: string, family: 4 | 6, littleEndian: boolean): TcpSocket | null {
  const f = line.trim().split(/\s+/);
  if (f.length < 10) return null;
  return {
    inode: Number(f[9]),
    state: stateName(f[3]!),
    local: decodeEndpoint(f[1]!, littleEndian),
    remote: decodeEndpoint(f[2]!, littleEndian),
    family,
  };
}

/** The row whose inode column is `inode`; other columns that happen to hold the same digits are passed over. */
function findRow(text: string, inode: number, family: 4 | 6, littleEndian: boolean): TcpSocket | null {
  const needle = ` ${inode} `;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    const row = start > 0 ? parseRow(text.slice(start, end < 0 ? text.length : end), family, littleEndian) : null;
    if (row?.inode === inode) return row;
  }
  return null;
}

function emptyByState(): Record<TcpState, number> {
  const byState = {} as Record<TcpState, number>;
  for (const s of TCP_STATES) byState[s] = 0;
  byState.UNKNOWN = 0;
  return byState;
}

function readNetTable(pid: number | undefined, name: 'tcp' | 'tcp6'): string {
  try {
    return readFileSync(`${procDir(pid)}/net/${name}`, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT' && name === 'tcp6' && procAvailable()) return ''; // IPv6 disabled
    throw censusError(pid, `/proc/net/${name}`, err);
  }
}

/**
 * TCP sockets owned by `pid` (default: this process), by state. Pass an FdCensus taken just before to reuse it.
 * TIME_WAIT sockets have left their process (inode 0), so they never show up here; see namespaceTimeWait().
 */
export function tcpCensus(pid?: number, fds: FdCensus = fdCensus(pid), notTcp?: ReadonlySet<number>): TcpCensus {
  const byState = emptyByState();
  const sockets: TcpSocket[] = [];
  // `notTcp`: socket inodes a previous census found in neither table (Unix sockets): they cannot make tcp6 worth reading.
  const wanted = notTcp && notTcp.size > 0 ? new Set([...fds.socketInodes].filter((i) => !notTcp.has(i))) : fds.socketInodes;
  const rows = wanted.size === 0 ? [] : parseProcNetTcp(readNetTable(pid, 'tcp'), 4, undefined, wanted);
  // Each read of these files walks the kernel's whole TCP hash table (1 to 4.3 ms on the VMs measured, whatever the row count): skip
  // tcp6 when every socket FD was already found in tcp (a socket is in one table at most).
  if (rows.length < wanted.size) rows.push(...parseProcNetTcp(readNetTable(pid, 'tcp6'), 6, undefined, wanted));
  for (const row of rows) {
    byState[row.state] += 1;
    sockets.push(row);
  }
  return { pid: fds.pid, byState, sockets };
}

/** Resident set size of another process, from /proc/<pid>/status (VmRSS, kB). */
export function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * This process: FDs, TCP sockets, RSS and heap. FDs and sockets are null where /proc is missing. `readTcp` turns the
 * FD census into the TCP one (the monitor's SelfCensus passes one that reuses its last reading of the tables).
 */
export function processCensus(readTcp: (fds: FdCensus) => TcpCensus = (fds) => tcpCensus(undefined, fds)): ProcessCensus {
  const mem = process.memoryUsage();
  let fds: FdCensus | null = null;
  let tcp: TcpCensus | null = null;
  const available = procAvailable();
  if (available) {
    fds = fdCensus();
    tcp = readTcp(fds);
  }
  return { procAvailable: available, fds, tcp, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}
