/**
 * A push-to-pull bridge: callbacks (WebSocket events) push, one `for await` pulls. Bounded: if
 * the consumer ever falls `capacity` items behind, the oldest are dropped and counted, so a
 * stalled tab cannot grow memory without limit.
 */

export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private done = false;
  private failure: Error | undefined;
  /** Items dropped because the consumer was `capacity` behind. */
  dropped = 0;

  constructor(private readonly capacity = 50_000) {}

  push(item: T): void {
    if (this.done) return;
    if (this.items.length - this.head >= this.capacity) {
      this.head++;
      this.dropped++;
    }
    this.items.push(item);
    this.wake();
  }

  /** Ends the iteration after the queued items. */
  end(): void {
    this.done = true;
    this.wake();
  }

  /** Ends the iteration with an error after the queued items. */
  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.done = true;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.head < this.items.length) {
        const item = this.items[this.head] as T;
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head);
          this.head = 0;
        }
        yield item;
        continue;
      }
      if (this.done) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
