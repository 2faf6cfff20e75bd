/** GET JSON from an exchange REST API with a timeout, typed errors and Retry-After, retried with p-retry. */
import pRetry, { AbortError } from 'p-retry';
import { CollectorError, parseRetryAfter } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RateBudget } from './rate-budget.ts';

export class RestError extends CollectorError {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  readonly body: string;
  constructor(code: 'E_REST' | 'E_REST_RATE_LIMITED', message: string, status: number, body: string, retryAfterMs?: number) {
    super(code, message);
    this.status = status;
    this.body = body;
    this.retryAfterMs = retryAfterMs;
  }
}

export interface RestRequest {
  readonly url: string;
  readonly budget: RateBudget;
  readonly cost: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly retries?: number;
  /** Default wait after a 429 without Retry-After (OKX documents none: its window is 2 s). */
  readonly defaultRateLimitWaitMs?: number;
  /** Give up (the gap stays open and is retried later) after this long. */
  readonly maxRetryTimeMs?: number;
  /** A rate limit the exchange reports in the body of a successful answer (OKX: code 50011 with HTTP 200). */
  readonly rateLimitedBody?: (body: unknown) => boolean;
}

/** A rate-limited answer (429, 418, or a body that says so): it pauses the shared budget; never a final failure. */
export function isRateLimited(err: unknown): boolean {
  return err instanceof RestError && err.code === 'E_REST_RATE_LIMITED';
}

const REQUEST_TIMEOUT_MS = 10_000;

async function getOnce(req: RestRequest): Promise<unknown> {
  await req.budget.take(req.cost, req.signal);
  const timeout = AbortSignal.timeout(req.timeoutMs ?? REQUEST_TIMEOUT_MS);
  const signal = req.signal ? AbortSignal.any([req.signal, timeout]) : timeout;
  req.budget.counters.requests++;
  let res: Response;
  let body: string;
  try {
    res = await fetch(req.url, { signal, headers: { accept: 'application/json' } });
    body = await res.text();
  } catch (err) {
    req.budget.counters.errors++;
    throw err;
  }
  if (res.status >= 400 && res.status !== 429 && res.status !== 418) req.budget.counters.errors++;
  if (res.status === 429 || res.status === 418) throw rateLimited(req, res, body, `HTTP ${res.status} rate limited`);
  if (res.status >= 500) throw new RestError('E_REST', `HTTP ${res.status}: ${body.slice(0, 200)}`, res.status, body.slice(0, 300));
  if (res.status >= 400) throw new AbortError(new RestError('E_REST', `HTTP ${res.status}: ${body.slice(0, 200)}`, res.status, body.slice(0, 300)));
  let json: unknown;
  try {
    json = JSON.parse(body) as unknown;
  } catch {
    throw new RestError('E_REST', `response is not JSON: ${body.slice(0, 100)}`, res.status, body.slice(0, 300));
  }
  if (req.rateLimitedBody?.(json)) throw rateLimited(req, res, body, `HTTP ${res.status} answer says rate limited`);
  return json;
}

function rateLimited(req: RestRequest, res: Response, body: string, what: string): RestError {
  req.budget.counters.rateLimited++;
  const wait = parseRetryAfter(res.headers.get('retry-after')) ?? req.defaultRateLimitWaitMs ?? 2_000;
  req.budget.pauseFor(wait);
  return new RestError('E_REST_RATE_LIMITED', `${what}, waiting ${wait} ms`, res.status, body.slice(0, 300), wait);
}

/**
 * Retries transient failures (network, 5xx, 429/418 after their Retry-After) with backoff; 4xx other than those are
 * final. Rate-limit waits do not consume retries: the shared budget already holds every caller back.
 */
export function getJson(req: RestRequest): Promise<unknown> {
  return pRetry(() => getOnce(req), {
    retries: req.retries ?? 5,
    minTimeout: 250,
    maxTimeout: 10_000,
    factor: 2,
    randomize: true,
    maxRetryTime: req.maxRetryTimeMs ?? 120_000,
    ...(req.signal ? { signal: req.signal } : {}),
    shouldConsumeRetry: ({ error }) => !isRateLimited(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      req.logger.warn({ url: req.url, attempt: attemptNumber, retriesLeft, err: error }, 'REST request failed');
    },
  });
}
