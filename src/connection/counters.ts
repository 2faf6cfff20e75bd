/** Per-connection counters, kept for the life of the process; snapshots feed the stats line and /metrics. */
import { LIVENESS_REASONS, RECONNECT_REASONS, REJECT_KINDS } from '../snapshots.ts';
import type { LivenessReason, ReconnectReason, RejectKind } from '../snapshots.ts';

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/** Close codes are labels: keep the set bounded to the ranges the protocol defines. */
export function closeCodeLabel(code: number): string {
  return Number.isInteger(code) && code >= 1000 && code <= 4999 ? String(code) : 'other';
}

const MAX_CLOSE_CODE_LABELS = 32;

export class ConnectionCounters {
  connects = 0;
  reconnects = 0;
  lastBackoffMs = 0;
  frames = 0;
  ticks = 0;
  resubscribed = 0;
  readonly detections: Record<LivenessReason, number> = zeroes(LIVENESS_REASONS);
  readonly reconnectsByReason: Record<ReconnectReason, number> = zeroes(RECONNECT_REASONS);
  readonly rejected: Record<RejectKind, number> = zeroes(REJECT_KINDS);
  readonly closeCodes: Record<string, number> = {};

  countReconnect(reason: ReconnectReason): void {
    this.reconnects += 1;
    this.reconnectsByReason[reason] += 1;
  }

  countCloseCode(code: number): void {
    let label = closeCodeLabel(code);
    if (!(label in this.closeCodes) && Object.keys(this.closeCodes).length >= MAX_CLOSE_CODE_LABELS) label = 'other';
    this.closeCodes[label] = (this.closeCodes[label] ?? 0) + 1;
  }
}
