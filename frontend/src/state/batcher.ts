/**
 * Buffers items outside React and flushes them in one batch per animation frame. If frames
 * stop (a hidden tab gets none), the buffer is flushed anyway once it reaches `maxBuffered`,
 * so memory stays bounded; the consumer's state is bounded too.
 */

export type Scheduler = (callback: () => void) => void;

export class FrameBatcher<T> {
  private buffer: T[] = [];
  private scheduled = false;

  constructor(
    private readonly onFlush: (batch: T[], render: boolean) => void,
    private readonly schedule: Scheduler,
    private readonly maxBuffered = 5_000,
  ) {}

  push(item: T): void {
    this.buffer.push(item);
    if (this.buffer.length >= this.maxBuffered) this.drain(false);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => {
        this.scheduled = false;
        this.drain(true);
      });
    }
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Hands everything buffered to `onFlush` (render: whether to publish a new view). */
  drain(render: boolean): void {
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length > 0 || render) this.onFlush(batch, render);
  }
}
