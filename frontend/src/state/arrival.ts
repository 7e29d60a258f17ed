/** An event's payload as the panels receive it, with where it came from. */

export interface Arrival<T> {
  readonly payload: T;
  readonly partition: number;
  readonly offset: bigint;
  /** The producer's timestamp of the event envelope. */
  readonly producedMs: number | undefined;
  /** Served from the past (see `replay.ts`): shown, but not counted in rates or latency. */
  readonly replayed: boolean;
  /** When the page received it. */
  readonly receivedMs: number;
}
