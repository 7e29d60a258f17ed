/** Timestamp helpers shared by the reducers. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** Milliseconds since the epoch, or `undefined` for an absent timestamp. */
export function timestampMs(ts: Timestamp | undefined): number | undefined {
  if (!ts) return undefined;
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000);
}
