/**
 * The connection lifecycle as one union, changed only through `transition()`, which refuses an illegal pair.
 *
 *   idle ─start─► connecting ─open─► subscribing ─ack or data─► live
 *   live ─notice / age limit─► rotating ─replacement live─► live      (old socket closed once the new one is live)
 *   connecting | subscribing | live | rotating ─close / error / silence / heartbeat─► closing ─socket gone─► backoff
 *   backoff ─timer─► connecting
 *   any ─stop─► stopping ─sockets gone, timers cleared─► stopped
 */
import { CollectorError } from '../errors.ts';
import type { ConnectionStateName } from '../snapshots.ts';

export type { ConnectionStateName };

const ALLOWED: Readonly<Record<ConnectionStateName, readonly ConnectionStateName[]>> = {
  idle: ['connecting', 'stopping'],
  connecting: ['subscribing', 'closing', 'stopping'],
  subscribing: ['live', 'closing', 'stopping'],
  live: ['rotating', 'closing', 'stopping'],
  // a replacement that goes live returns to live; if the old socket dies first, the replacement carries on from
  // whatever phase it is in (connecting/subscribing); if both fail, closing.
  rotating: ['live', 'connecting', 'subscribing', 'closing', 'stopping'],
  closing: ['backoff', 'stopping'],
  backoff: ['connecting', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export class IllegalTransitionError extends CollectorError {
  constructor(from: ConnectionStateName, to: ConnectionStateName) {
    super('E_ILLEGAL_TRANSITION', `illegal connection transition ${from} -> ${to}`);
  }
}

export function canTransition(from: ConnectionStateName, to: ConnectionStateName): boolean {
  return ALLOWED[from].includes(to);
}

/** Returns `to` if the move is legal; throws IllegalTransitionError otherwise. */
export function transition(from: ConnectionStateName, to: ConnectionStateName): ConnectionStateName {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
  return to;
}
