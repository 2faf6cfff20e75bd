/**
 * This process's census as the monitor takes it every few seconds: the FD census each time (a directory listing, tens
 * of µs), the TCP tables only when they can say something new. Each read of /proc/net/tcp or tcp6 walks the kernel's
 * whole established hash, whatever the row count: 262,144 buckets on a 24 GB VM, ~2 ms per read() and two read()s per
 * file, 4.3 ms for one table; at one census every 5 s with both tables that was 1.7 ms of CPU a second, most of an
 * idle collector's. So the tables are read again when the set of socket FDs changed (a reconnect, a new pool
 * client: the new socket's state is wanted at once) or when the last reading is `maxAgeMs` old (a socket that
 * changes state without an FD change, e.g. to CLOSE_WAIT, is seen within that much; the monitor passes half the
 * CLOSE_WAIT grace). Socket inodes found in neither table (Unix sockets) are remembered so that they do not make
 * every census read tcp6 too; the memory is pruned to the FDs still open and forgotten every FORGET_EVERY readings.
 */
import { processCensus, tcpCensus } from './resources.ts';
import type { FdCensus, ProcessCensus, TcpCensus } from './resources.ts';

/** Readings of the tables after which the inodes remembered as not TCP are tried again. */
const FORGET_EVERY = 12;

export class SelfCensus {
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #last: { at: number; inodes: ReadonlySet<number>; tcp: TcpCensus } | null = null;
  #notTcp = new Set<number>();
  #readings = 0;

  constructor(maxAgeMs: number, now: () => number = () => performance.now()) {
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  /** Times the TCP tables were read (for tests and the curious). */
  get tableReadings(): number {
    return this.#readings;
  }

  /** Throws CensusError where /proc cannot be read (the monitor reports it and leaves the figures out). */
  take(): ProcessCensus {
    return processCensus((fds) => this.#tcp(fds));
  }

  #tcp(fds: FdCensus): TcpCensus {
    const now = this.#now();
    const last = this.#last;
    if (last !== null && now - last.at < this.#maxAgeMs && sameSet(last.inodes, fds.socketInodes)) return last.tcp;
    if (++this.#readings % FORGET_EVERY === 0) this.#notTcp.clear();
    for (const inode of this.#notTcp) if (!fds.socketInodes.has(inode)) this.#notTcp.delete(inode);
    const tcp = tcpCensus(undefined, fds, this.#notTcp);
    const found = new Set(tcp.sockets.map((s) => s.inode));
    // Both tables were read when any wanted inode is missing from tcp: what neither holds is not a TCP socket
    // (or one closed and unhashed, which no table will show again).
    for (const inode of fds.socketInodes) if (!found.has(inode)) this.#notTcp.add(inode);
    this.#last = { at: now, inodes: fds.socketInodes, tcp };
    return tcp;
  }
}

function sameSet(a: ReadonlySet<number>, b: ReadonlySet<number>): boolean {
  if (a.size !== b.size) return false;
  for (const v of a) if (!b.has(v)) return false;
  return true;
}
