/**
 * The last position seen per (topic, partition), so that a reconnecting subscription can ask
 * the gateway for exactly what it missed (`SubscribeRequest.resume_from`). Four messages move
 * it: an event (its own position), a gap notice (the positions passed over), a heartbeat (the
 * subscription's current positions, including events its filter passed over — so a narrow
 * filter resumes from where it really is, not from its last match) and a positions reset (the
 * partition's offsets started again: its positions replace ours, even if lower).
 */
import { create } from "@bufbuild/protobuf";
import { PositionSchema, type Event, type Position } from "../gen/streamweaver/v1/events_pb";
import type { GapNotice, Heartbeat, PositionsReset } from "../gen/streamweaver/v1/stream_pb";

/** Topics × partitions is small; the cap only guards against a misbehaving server. */
const MAX_TRACKED = 1024;

export class ResumeTracker {
  private readonly last = new Map<string, { topic: string; partition: number; offset: bigint }>();

  /** Records an event's position as the last one seen on its partition. */
  observeEvent(event: Event): void {
    // Events arrive in order within a partition, so the latest one is the resume point, even
    // if its offset is lower (the topic was recreated and offsets started again).
    this.record(event.topic, event.partition, event.offset, "replace");
  }

  /** A gap notice names the last position passed over per partition: resume after it. */
  observeGap(gap: GapNotice): void {
    for (const p of gap.lastPositions) this.record(p.topic, p.partition, p.offset, "forward");
  }

  /** A heartbeat's positions are where the subscription is, matched or not: move forward to them. */
  observeHeartbeat(heartbeat: Heartbeat): void {
    for (const p of heartbeat.positions) this.record(p.topic, p.partition, p.offset, "forward");
  }

  /** The named partitions started again: their new positions replace ours. */
  observeReset(reset: PositionsReset): void {
    for (const p of reset.positions) this.record(p.topic, p.partition, p.offset, "replace");
  }

  /** The positions to send as `resumeFrom`, sorted for a stable request. */
  positions(): Position[] {
    return [...this.last.values()]
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
      .map((p) => create(PositionSchema, p));
  }

  get size(): number {
    return this.last.size;
  }

  clear(): void {
    this.last.clear();
  }

  private record(topic: string, partition: number, offset: bigint, how: "replace" | "forward"): void {
    if (!topic || partition < 0 || offset < 0n) return;
    const key = `${topic}\u0000${partition}`;
    const seen = this.last.get(key);
    if (seen) {
      // A gap notice or heartbeat may name an older position than an event already seen: it
      // must not move the resume point backwards. Only events and resets may.
      if (how === "replace" || offset > seen.offset) seen.offset = offset;
      return;
    }
    if (this.last.size >= MAX_TRACKED) return;
    this.last.set(key, { topic, partition, offset });
  }
}
