/**
 * Live or replayed? The figures that measure the stream now — events per second and latency —
 * must count only events that happened while this page was watching, not events served from the
 * past: a resume's backfill, a `startAt` window, or what a restarted gateway re-publishes.
 *
 * The rule, exact and checkable: an event is **replayed** when the producer made it before the
 * subscription attempt that delivered it was opened (its `producedAt` is earlier than the
 * moment this page called the transport's `open`). Such an event was already on its way or in
 * Kafka when the page asked, so it is history by definition; anything produced after the page
 * asked can only have reached it live. And while the gateway says the attempt's backfill is
 * still being delivered (its heartbeats' `caughtUp` is false: one comes as soon as a subscription
 * starts, and one the moment the backfill ends), every event counts as replayed: the
 * subscription passes `Infinity` as the moment it was opened (see `transport/subscription.ts`).
 *
 * Consequences, all deliberate: the few events in flight at the instant of subscribing (produced
 * milliseconds before) count as replayed, a handful per connection; an event that is late
 * because the pipeline is slow still counts as live, so latency shows the slowness. The rule
 * compares the producer's clock with the browser's: with the two clocks apart by S, events
 * produced within S of the moment of subscribing may be classed either way (nothing else moves).
 * An event with no timestamp is live (there is nothing to say it is old).
 */

/** Whether an event produced at `producedMs` and delivered by an attempt opened at `openedMs` is replayed. */
export function isReplayed(producedMs: number | undefined, openedMs: number): boolean {
  return producedMs !== undefined && producedMs < openedMs;
}
