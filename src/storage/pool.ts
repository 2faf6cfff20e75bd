/**
 * The bounded, resettable connection pool kysely runs on.
 *
 * Bound: every server connection, of any pool generation, holds one *connection permit* from its socket's
 * creation until the socket is closed (the pg Client subclass below takes the permit in `connect()` and gives it back
 * on the connection's 'end' event, i.e. when the socket is gone). There are `poolMax` permits, so the process never
 * holds more than `poolMax` server connections - not while a removed client is still closing, and not during a
 * reset, where the new generation simply waits for the permits the old one gives back as its in-flight statements
 * finish. Waiting for a permit is part of pg-pool's `connectionTimeoutMillis` (the acquire timeout).
 *
 * Reset: `reset()` makes a fresh pg.Pool the current generation (new work goes there at once) and retires the old
 * one: once it has no queued waiters (pg-pool's `end()` never answers waiters), `end()` closes its idle clients
 * immediately and each busy client when its statement is done and it is released. Nothing in flight fails.
 *
 * Errors: each client gets a permanent 'error' listener at construction (a checked-out client whose backend dies
 * would otherwise crash the process), and each pool an 'error' listener for idle clients. Both count and log.
 */
import pg from 'pg';
import type { Socket } from 'node:net';
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type { StorageConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { PoolSnapshot } from '../snapshots.ts';
import { classifyDbError, describeDbError, StorageError } from './errors.ts';

export const APPLICATION_NAME = 'market-collector';
/** A client being closed whose socket has not closed after this long is destroyed (half-open peers). */
const CLOSE_GRACE_MS = 5_000;
/** How long a retiring generation may keep queued waiters before it is ended regardless. */
const RETIRE_POLL_MS = 25;

/** The pool's knobs are the storage configuration's, plus where to connect and where to log. */
export type PoolOptions = Pick<
  StorageConfig,
  'poolMax' | 'idleTimeoutMs' | 'acquireTimeoutMs' | 'connectTimeoutMs' | 'statementTimeoutMs' | 'maxUses' | 'maxLifetimeMs'
> & {
  readonly url: string;
  readonly logger: Logger;
};

/** A counting semaphore whose waits can be cancelled. */
class Permits {
  #free: number;
  readonly #queue: Array<(granted: boolean) => void> = [];
  constructor(size: number) {
    this.#free = size;
  }
  get waiting(): number {
    return this.#queue.length;
  }
  /** Resolves true when granted, false when cancelled first. */
  acquire(): { promise: Promise<boolean>; cancel(): void } {
    if (this.#free > 0 && this.#queue.length === 0) {
      this.#free--;
      return { promise: Promise.resolve(true), cancel: () => {} };
    }
    let resolveFn!: (granted: boolean) => void;
    const promise = new Promise<boolean>((resolve) => (resolveFn = resolve));
    this.#queue.push(resolveFn);
    const cancel = (): void => {
      const i = this.#queue.indexOf(resolveFn);
      if (i >= 0) {
        this.#queue.splice(i, 1);
        resolveFn(false);
      }
    };
    return { promise, cancel };
  }
  release(): void {
    const next = this.#queue.shift();
    if (next) next(true);
    else this.#free++;
  }
}

interface ClientInternals {
  connection: { stream: Socket; once(event: 'end', listener: () => void): void };
}

interface ClientHooks {
  readonly permits: Permits;
  readonly connectTimeoutMs: number;
  onClientError(err: Error, client: pg.Client): void;
}

/** A pg Client that holds a connection permit for exactly as long as its socket exists. */
function makeClientClass(hooks: ClientHooks): typeof pg.Client {
  return class PermitClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: hooks.connectTimeoutMs });
      // Permanent listener: pg-pool removes its own listener while a client is checked out.
      this.on('error', (err: Error) => hooks.onClientError(err, this as pg.Client));
    }

    override connect(cb?: (...args: any[]) => void): any {
      if (typeof cb !== 'function') {
        return new Promise<this>((resolve, reject) => this.connect((err: Error | null) => (err ? reject(err) : resolve(this))));
      }
      const callback = cb as (err: Error | null) => void;
      const internals = this as unknown as ClientInternals;
      const stream = internals.connection.stream;
      const wait = hooks.permits.acquire();
      let done = false;
      // pg-pool's acquire timer destroys the (unconnected) socket: stop waiting for a permit then.
      const onClose = (): void => {
        if (done) return;
        done = true;
        wait.cancel();
        callback(new Error('timeout waiting for a connection slot'));
      };
      stream.once('close', onClose);
      void wait.promise.then((granted) => {
        if (!granted) return;
        if (done) {
          hooks.permits.release();
          return;
        }
        done = true;
        stream.off('close', onClose);
        let freed = false;
        internals.connection.once('end', () => {
          if (!freed) {
            freed = true;
            hooks.permits.release();
          }
        });
        super.connect(callback as (err: Error) => void);
      });
      return undefined;
    }

    override end(callback?: (err: Error) => void): any {
      const stream = (this as unknown as ClientInternals).connection.stream;
      if (!stream.destroyed) {
        const timer = setTimeout(() => stream.destroy(), CLOSE_GRACE_MS);
        timer.unref();
        stream.once('close', () => clearTimeout(timer));
      }
      return callback ? super.end(callback) : super.end();
    }
  };
}

interface Generation {
  readonly id: number;
  readonly pool: pg.Pool;
  retired: boolean;
  ended: Promise<void> | undefined;
}

interface Lease {
  readonly generation: Generation;
  broken: Error | undefined;
}

/** What kysely sees: one stable object per pg client, released to the generation it came from. */
class LeasedClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient;
  readonly #owner: ResettablePool;
  #lease: Lease | undefined;

  constructor(client: pg.PoolClient, owner: ResettablePool) {
    this.#client = client;
    this.#owner = owner;
  }

  lease(lease: Lease): void {
    this.#lease = lease;
  }

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): any {
    if (typeof sqlOrCursor !== 'string') return this.#client.query(sqlOrCursor as never);
    const lease = this.#lease;
    return this.#client.query(sqlOrCursor, parameters as unknown[]).catch((err: unknown) => {
      // A connection-level failure (terminated backend, client-side read timeout) leaves the socket unusable or
      // busy: make sure it is destroyed on release instead of going back to the idle list.
      if (lease && classifyDbError(err) === 'transient') lease.broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    });
  }

  release(): void {
    const lease = this.#lease;
    if (!lease) return; // already released: never throw from a finally block
    this.#lease = undefined;
    this.#owner.releaseLease(lease, this.#client);
  }
}

export class ResettablePool implements PostgresPool {
  readonly #opts: PoolOptions;
  readonly #log: Logger;
  readonly #permits: Permits;
  readonly #Client: typeof pg.Client;
  readonly #wrappers = new WeakMap<pg.PoolClient, LeasedClient>();
  readonly #errored = new WeakSet<object>();
  readonly #generations = new Set<Generation>();
  #current: Generation;
  #nextId = 1;
  #closed = false;
  #ending: Promise<void> | undefined;
  #expired = 0;
  #resets = 0;
  #errors = 0;
  #checkedOut = 0;

  constructor(opts: PoolOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#permits = new Permits(opts.poolMax);
    this.#Client = makeClientClass({
      permits: this.#permits,
      connectTimeoutMs: opts.connectTimeoutMs,
      onClientError: (err, client) => this.#onClientError(err, client),
    });
    this.#current = this.#newGeneration();
  }

  /** Checked-out clients across generations (for leak checks in tests). */
  get checkedOut(): number {
    return this.#checkedOut;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#closed) throw new StorageError('connection pool is closed', 'other');
    const generation = this.#current;
    const client = await generation.pool.connect();
    this.#checkedOut++;
    let wrapper = this.#wrappers.get(client);
    if (!wrapper) {
      wrapper = new LeasedClient(client, this);
      this.#wrappers.set(client, wrapper);
    }
    wrapper.lease({ generation, broken: undefined });
    return wrapper;
  }

  /** Internal: called by LeasedClient.release(). */
  releaseLease(lease: Lease, client: pg.PoolClient): void {
    this.#checkedOut--;
    if (lease.broken) this.#onClientError(lease.broken, client as unknown as pg.Client);
    try {
      client.release(lease.broken ?? undefined);
    } catch (err) {
      this.#log.error({ err }, 'pg client release failed');
    }
  }

  /** Swap in a fresh pool; the old one ends after its in-flight statements. Resolves when the old one has ended. */
  async reset(): Promise<void> {
    if (this.#closed) return;
    const old = this.#current;
    this.#current = this.#newGeneration();
    this.#resets++;
    this.#log.info({ retiring: old.id, current: this.#current.id }, 'connection pool reset');
    await this.#retire(old);
  }

  /** Stops handing out clients; resolves when every generation has ended (in-flight statements finished). */
  end(): Promise<void> {
    if (!this.#ending) {
      this.#closed = true;
      this.#ending = Promise.all([...this.#generations].map((g) => this.#retire(g))).then(() => undefined);
    }
    return this.#ending;
  }

  snapshot(): PoolSnapshot {
    let total = 0;
    let idle = 0;
    let waiting = 0;
    for (const g of this.#generations) {
      total += g.pool.totalCount;
      idle += g.pool.idleCount;
      waiting += g.pool.waitingCount;
    }
    return { total, idle, waiting, expired: this.#expired, resets: this.#resets, errors: this.#errors, max: this.#opts.poolMax };
  }

  #newGeneration(): Generation {
    const o = this.#opts;
    const pool = new pg.Pool({
      connectionString: o.url,
      max: o.poolMax,
      idleTimeoutMillis: o.idleTimeoutMs,
      connectionTimeoutMillis: o.acquireTimeoutMs,
      maxUses: o.maxUses,
      maxLifetimeSeconds: Math.max(1, Math.ceil(o.maxLifetimeMs / 1000)),
      application_name: APPLICATION_NAME,
      statement_timeout: o.statementTimeoutMs,
      idle_in_transaction_session_timeout: Math.max(60_000, o.statementTimeoutMs * 2),
      // Client-side bound for a half-open socket; the server's statement_timeout fires first normally.
      query_timeout: o.statementTimeoutMs + 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      Client: this.#Client,
    } as pg.PoolConfig);
    const generation: Generation = { id: this.#nextId++, pool, retired: false, ended: undefined };
    pool.on('error', (err) => {
      // An idle client died (already removed by pg-pool); counted by the client-level listener.
      this.#log.debug({ err: { message: err.message }, generation: generation.id }, 'idle pg client removed after error');
    });
    pool.on('remove', (client) => {
      if (!this.#errored.has(client) && !generation.retired) this.#expired++;
    });
    this.#generations.add(generation);
    return generation;
  }

  #onClientError(err: Error, client: pg.Client): void {
    if (this.#errored.has(client)) return;
    this.#errored.add(client);
    this.#errors++;
    this.#log.warn({ reason: describeDbError(err) }, 'database connection lost; it will be replaced');
  }

  #retire(generation: Generation): Promise<void> {
    if (!generation.ended) {
      generation.retired = true;
      generation.ended = (async () => {
        // pg-pool never settles waiters queued when end() is called: let them be served (or time out) first.
        while (generation.pool.waitingCount > 0) await new Promise((r) => setTimeout(r, RETIRE_POLL_MS));
        await generation.pool.end();
        this.#generations.delete(generation);
        this.#log.debug({ generation: generation.id }, 'retired connection pool ended');
      })();
    }
    return generation.ended;
  }
}
