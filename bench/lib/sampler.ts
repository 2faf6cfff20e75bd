/**
 * The soak's once-a-second sample of the collector process, taken from outside it: FDs and TCP sockets by state
 * from /proc/<pid> (matched by socket inode), RSS, the database connections it holds (pg_stat_activity), and what
 * its own stats file says (heap, reconnects, buffer, journal, pool). Also tracks how long each CLOSE_WAIT socket
 * has been sitting there.
 */
import pg from 'pg';
import { fdCensus, rssOf, tcpCensus } from '../../src/monitor/resources.ts';
import type { StatsLine } from '../../src/monitor/stats.ts';

export interface Sample {
  /** Seconds since the soak started. */
  readonly t: number;
  readonly fds: number;
  readonly fdsByType: Readonly<Record<string, number>>;
  readonly tcp: Readonly<Record<string, number>>;
  readonly tcpTotal: number;
  readonly rssMb: number;
  readonly heapMb: number | null;
  /** Server connections with application_name market-collector on this database; null while unreachable. */
  readonly dbConnections: number | null;
  readonly reconnects: number;
  readonly bufferDepth: number;
  readonly journalTicks: number;
  readonly poolTotal: number;
  readonly poolResets: number;
  readonly gapsOpen: number;
  readonly oldestCloseWaitMs: number;
}

/** A pg client that reconnects lazily after the server went away (the soak restarts it). */
class Probe {
  readonly #url: string;
  #client: pg.Client | null = null;

  constructor(url: string) {
    this.#url = url;
  }

  async count(): Promise<number | null> {
    try {
      if (!this.#client) {
        const c = new pg.Client({ connectionString: this.#url, application_name: 'mc-soak-probe', connectionTimeoutMillis: 500, query_timeout: 900 });
        c.on('error', () => {
          if (this.#client === c) this.#client = null;
        });
        await c.connect().catch((err: unknown) => {
          void c.end().catch(() => {});
          throw err;
        });
        this.#client = c;
      }
      const r = await this.#client.query<{ n: string }>(
        "select count(*) as n from pg_stat_activity where application_name = 'market-collector' and datname = current_database()",
      );
      return Number(r.rows[0]!.n);
    } catch {
      const c = this.#client;
      this.#client = null;
      await c?.end().catch(() => {});
      return null;
    }
  }

  async close(): Promise<void> {
    await this.#client?.end().catch(() => {});
    this.#client = null;
  }
}

export class Sampler {
  readonly #pid: number;
  readonly #stats: () => StatsLine | null;
  readonly #probe: Probe;
  readonly #started: number;
  readonly #closeWaitSince = new Map<number, number>();
  readonly samples: Sample[] = [];
  /** The oldest any CLOSE_WAIT socket got over the whole run. */
  maxCloseWaitMs = 0;
  maxDbConnections = 0;

  constructor(pid: number, dbUrl: string, stats: () => StatsLine | null, startedAt: number) {
    this.#pid = pid;
    this.#stats = stats;
    this.#probe = new Probe(dbUrl);
    this.#started = startedAt;
  }

  async sample(): Promise<Sample | null> {
    let fds;
    let tcp;
    try {
      fds = fdCensus(this.#pid);
      tcp = tcpCensus(this.#pid, fds);
    } catch {
      return null; // the process is gone
    }
    const now = Date.now();
    const seen = new Set<number>();
    for (const s of tcp.sockets) {
      if (s.state !== 'CLOSE_WAIT') continue;
      seen.add(s.inode);
      if (!this.#closeWaitSince.has(s.inode)) this.#closeWaitSince.set(s.inode, now);
    }
    for (const inode of [...this.#closeWaitSince.keys()]) if (!seen.has(inode)) this.#closeWaitSince.delete(inode);
    let oldest = 0;
    for (const since of this.#closeWaitSince.values()) oldest = Math.max(oldest, now - since);
    this.maxCloseWaitMs = Math.max(this.maxCloseWaitMs, oldest);

    const byState: Record<string, number> = {};
    let tcpTotal = 0;
    for (const [state, n] of Object.entries(tcp.byState)) {
      if (n > 0) byState[state] = n;
      tcpTotal += n;
    }
    const dbConnections = await this.#probe.count();
    if (dbConnections !== null) this.maxDbConnections = Math.max(this.maxDbConnections, dbConnections);
    const st = this.#stats();
    const sample: Sample = {
      t: Math.round((now - this.#started) / 100) / 10,
      fds: fds.total,
      fdsByType: { ...fds.byType },
      tcp: byState,
      tcpTotal,
      rssMb: Math.round(((rssOf(this.#pid) ?? NaN) / 1_048_576) * 10) / 10,
      heapMb: st ? Math.round((st.process.heapUsedBytes / 1_048_576) * 10) / 10 : null,
      dbConnections,
      reconnects: st ? st.connections.reduce((n, c) => n + c.reconnects.total, 0) : 0,
      bufferDepth: st?.pipeline?.bufferDepth ?? 0,
      journalTicks: st?.pipeline?.journalTicks ?? 0,
      poolTotal: st?.pool?.total ?? 0,
      poolResets: st?.pool?.resets ?? 0,
      gapsOpen: st?.gaps?.open ?? 0,
      oldestCloseWaitMs: oldest,
    };
    this.samples.push(sample);
    return sample;
  }

  close(): Promise<void> {
    return this.#probe.close();
  }
}
