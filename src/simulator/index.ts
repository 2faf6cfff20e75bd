/** The local exchange simulator: a Binance and an OKX on two local ports, for tests, benchmarks and the demo. */
export { ExchangeSimulator } from './simulator.ts';
export { FAULT_KINDS, REST_FAULT_KINDS, faultApplies } from './faults.ts';
export { SIM_EXCHANGES } from './types.ts';
export { DEEP_NESTING_LEVELS, HOSTILE_KINDS, UNSUBSCRIBED_SYMBOLS } from './hostile.ts';
export type { HostileKind } from './hostile.ts';
export type {
  FaultKind,
  FaultSchedule,
  OkxIdleActivity,
  RestFaultKind,
  SimExchange,
  SimStats,
  SimTrade,
  SimulatorOptions,
  TapeRange,
} from './types.ts';
