/** A clock a test moves by hand (across a UTC midnight, days ahead...). */
import type { Clock } from '../../src/clock.ts';

export class TestClock implements Clock {
  ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
  now(): number {
    return this.ms;
  }
}
