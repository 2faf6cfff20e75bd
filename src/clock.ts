/** Wall-clock time source, injectable so tests can move it (a simulated UTC day boundary). */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
