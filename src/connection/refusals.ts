/**
 * Symbols an exchange refused (OKX 60018 "Wrong URL or channel:...,instId:X doesn't exist", which a wrong URL or
 * channel gets too). Never for good on one error: each refusal is logged at error, confirmed against the exchange's
 * instrument list, and the symbol is handed back for a new subscription after a long wait that doubles up to an
 * hour. Every symbol of a connection refused is a configuration error naming the URL and the channel.
 */
import { CollectorError } from '../errors.ts';
import { judgeSymbols } from '../exchanges/instruments.ts';
import type { SymbolVerdict } from '../exchanges/instruments.ts';
import type { Logger } from '../logger.ts';
import type { Feed } from './feed.ts';
import { Timers } from './timers.ts';

/** Retries of a refused symbol double up to this. */
const RETRY_MAX_MS = 3_600_000;
/** How long a refusal's confirmation against the instruments endpoint may take. */
const CHECK_TIMEOUT_MS = 10_000;

interface Refusal {
  retries: number;
  detail: string;
  /** Out of the subscription set until its retry timer fires. */
  waiting: boolean;
}

export interface RefusalsOptions {
  readonly connId: string;
  readonly feed: Feed;
  /** The connection's configured symbols (the bound of what is kept here). */
  readonly configured: readonly string[];
  /** The first wait before a refused symbol is subscribed again. */
  readonly retryBaseMs: number;
  readonly log: Logger;
  /** The wait is over: put `symbol` back into the subscription set and subscribe it. */
  readonly retry: (symbol: string) => void;
  /** Every symbol was refused: the configuration is wrong. */
  readonly allRefused: (err: CollectorError) => void;
}

export class SymbolRefusals {
  readonly #opts: RefusalsOptions;
  readonly #timers = new Timers();
  readonly #entries = new Map<string, Refusal>();
  #closed = false;

  constructor(opts: RefusalsOptions) {
    this.#opts = opts;
  }

  /** Symbols out of the subscription set, waiting for their retry. */
  get waiting(): string[] {
    return [...this.#entries].filter(([, r]) => r.waiting).map(([s]) => s);
  }

  /** The connection took `symbol` out of its set; `remaining` symbols are still subscribed. */
  refused(symbol: string, detail: string, sample: string, remaining: number): void {
    const entry = this.#entries.get(symbol) ?? { retries: 0, detail, waiting: true };
    entry.detail = detail;
    entry.waiting = true;
    this.#entries.set(symbol, entry);
    const { feed } = this.#opts;
    this.#opts.log.error({ symbol, detail, url: this.#url(), channel: feed.channel, sample: sample.slice(0, 300) }, `exchange refused ${symbol}: ${detail}`);
    if (remaining === 0) void this.#everyOneRefused(detail);
    else void this.#confirm(symbol, entry);
  }

  close(): void {
    this.#closed = true;
    this.#timers.clearAll();
    this.#entries.clear();
  }

  async #confirm(symbol: string, entry: Refusal): Promise<void> {
    const verdict = (await this.#judge([symbol])).get(symbol)!;
    if (this.#closed || !entry.waiting) return;
    const delay = Math.min(RETRY_MAX_MS, this.#opts.retryBaseMs * 2 ** entry.retries);
    entry.retries += 1;
    const lookup = this.#opts.feed.instruments?.endpoint ?? 'no instruments endpoint';
    const why =
      verdict.kind === 'unknown' ? `${lookup} does not list it (unknown instrument)`
        : verdict.kind === 'listed' ? `${lookup} lists it (state ${verdict.state}): the URL or channel is refused for it`
          : `could not confirm it (${verdict.detail})`;
    this.#opts.log.error({ symbol, verdict: verdict.kind, retryInMs: delay }, `refused symbol ${symbol}: ${why}; subscribing it again in ${delay} ms`);
    this.#timers.set(symbol, delay, () => {
      entry.waiting = false;
      this.#opts.log.info({ symbol }, `subscribing refused symbol ${symbol} again`);
      this.#opts.retry(symbol);
    });
  }

  async #everyOneRefused(detail: string): Promise<void> {
    const symbols = this.#opts.configured;
    const verdicts = await this.#judge(symbols);
    if (this.#closed) return;
    const { feed, connId } = this.#opts;
    const listed = symbols.filter((s) => verdicts.get(s)?.kind === 'listed');
    const unreachable = [...verdicts.values()].find((v) => v.kind === 'unreachable');
    const lookup = feed.instruments?.endpoint ?? 'the instruments endpoint';
    const why =
      listed.length > 0 ? `${lookup} lists ${listed.join(', ')}: the URL or the channel is wrong`
        : unreachable?.kind === 'unreachable' ? `${lookup} could not be asked (${unreachable.detail}): the URL, the channel or the symbols are wrong`
          : `${lookup} lists none of them: the symbols are wrong`;
    const err = new CollectorError(
      'E_SUBSCRIPTION_REFUSED',
      `configuration error: ${feed.exchange} refused every instrument of ${connId} on ${this.#url()} channel ${feed.channel} (${detail}); ${why}`,
    );
    this.#opts.log.error({ err, url: this.#url(), channel: feed.channel, symbols }, err.message);
    this.#opts.allRefused(err);
  }

  #judge(symbols: readonly string[]): Promise<Map<string, SymbolVerdict>> {
    const lookup = this.#opts.feed.instruments;
    if (!lookup) return Promise.resolve(new Map(symbols.map((s) => [s, { kind: 'unreachable', detail: 'no instruments endpoint configured' }])));
    return judgeSymbols(lookup, symbols, CHECK_TIMEOUT_MS);
  }

  #url(): string {
    return shortUrl(this.#opts.feed.url(this.#opts.configured));
  }
}

/** A URL for messages: origin and path, without the (possibly very long) stream list. */
export function shortUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.slice(0, 200);
  }
}
