/**
 * A fixed-capacity ring of the newest items. Pushing is O(1) whatever the rate, so a list that
 * takes a thousand rows a second costs nothing until it is looked at; the view is materialised
 * (newest first) only when the page publishes, a few times a second.
 */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private count = 0;
  private snapshot: readonly T[] | undefined;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError("a ring holds at least one item");
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.capacity, this.count + 1);
    this.snapshot = undefined;
  }

  get size(): number {
    return this.count;
  }

  /** Keeps only the items `keep` accepts, in order. */
  retain(keep: (item: T) => boolean): void {
    const kept = this.oldestFirst().filter(keep);
    this.items.fill(undefined);
    this.next = 0;
    this.count = 0;
    for (const item of kept) this.push(item);
    this.snapshot = undefined;
  }

  /** Newest first; the same array until the ring changes. */
  newestFirst(): readonly T[] {
    if (this.snapshot) return this.snapshot;
    const out: T[] = new Array<T>(this.count);
    for (let i = 0; i < this.count; i++) {
      out[i] = this.items[(this.next - 1 - i + this.capacity * 2) % this.capacity] as T;
    }
    this.snapshot = out;
    return out;
  }

  private oldestFirst(): T[] {
    return [...this.newestFirst()].reverse();
  }
}
