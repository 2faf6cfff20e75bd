/** Simulator options for tests that inject faults quickly: short heartbeats and notice delays, limits out of the way. */
import type { SimulatorOptions } from '../../src/simulator/index.ts';

export const FAST_FAULTS_SIM: SimulatorOptions = {
  tradesPerSecond: 20,
  binancePingIntervalMs: 300,
  shutdownCloseDelayMs: 300,
  noticeCloseDelayMs: 300,
  retryAfterSeconds: 1,
  oversizedBytes: 200_000,
  binanceHandshakesPer5Min: 100_000,
  okxHandshakesPerSecond: 1_000,
  okxSubscribesPerHour: 100_000,
};
