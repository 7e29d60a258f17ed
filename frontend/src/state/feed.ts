/**
 * The social feed: the newest `maxPosts` posts that pass the author filter (also applied by the
 * gateway), newest first, and the top hashtags among the last `hashtagWindow` posts received.
 * Both are bounded, whatever the rate of posts.
 */
import type { SocialPost } from "../gen/streamweaver/v1/events_pb";
import type { Arrival } from "./arrival";
import { Ring } from "./ring";
import { timestampMs } from "./time";

export interface PostRow {
  /** Consecutive per stored post: a unique React key, and how pausing counts new posts. */
  readonly seq: number;
  readonly postId: string;
  readonly author: string;
  readonly text: string;
  readonly hashtags: readonly string[];
  readonly likes: number;
  readonly reposts: number;
  readonly timeMs: number | undefined;
  readonly partition: number;
  readonly offset: string;
  readonly replayed: boolean;
  /** Lower-cased searchable text: author, text, hashtags. */
  readonly haystack: string;
}

export interface HashtagCount {
  readonly tag: string;
  readonly count: number;
}

export interface FeedOptions {
  maxPosts: number;
  hashtagWindow: number;
  topHashtags: number;
}

export const DEFAULT_FEED_OPTIONS: FeedOptions = { maxPosts: 1_000, hashtagWindow: 300, topHashtags: 10 };

/** Hashtags are compared without `#` and case. */
export function normaliseTag(tag: string): string {
  return tag.replace(/^#/, "").toLowerCase();
}

export class FeedState {
  private readonly ring: Ring<PostRow>;
  private seq = 0;
  private authors: ReadonlySet<string> = new Set();
  /** Hashtags of the last `hashtagWindow` posts, oldest first, and their counts. */
  private readonly window: (readonly string[])[] = [];
  private readonly counts = new Map<string, number>();
  private topCache: readonly HashtagCount[] | undefined;
  /** Posts received that the author filter excludes (in flight before a change reached the server). */
  filteredOut = 0;

  constructor(private readonly options: FeedOptions = DEFAULT_FEED_OPTIONS) {
    this.ring = new Ring(options.maxPosts);
  }

  /** Only posts by these authors (empty: everyone); posts held by others disappear at once. */
  setAuthors(authors: readonly string[]): void {
    this.authors = new Set(authors);
    this.ring.retain((p) => this.shows(p.author));
  }

  apply(arrivals: readonly Arrival<SocialPost>[]): void {
    if (arrivals.length === 0) return;
    for (const a of arrivals) {
      const p = a.payload;
      if (!this.shows(p.author)) {
        this.filteredOut++;
        continue;
      }
      this.count(p.hashtags);
      const hashtags = p.hashtags.slice(0, 12);
      this.ring.push({
        seq: ++this.seq,
        postId: p.postId,
        author: p.author,
        text: p.text,
        hashtags,
        likes: p.likes,
        reposts: p.reposts,
        timeMs: timestampMs(p.timestamp) ?? a.producedMs,
        partition: a.partition,
        offset: a.offset.toString(),
        replayed: a.replayed,
        haystack: [`@${p.author}`, p.text, ...hashtags.map((t) => `#${normaliseTag(t)}`)]
          .join("\n")
          .toLowerCase(),
      });
    }
    this.topCache = undefined;
  }

  /** Newest first; the same array until a post arrives or the filter changes. */
  list(): readonly PostRow[] {
    return this.ring.newestFirst();
  }

  /** The `seq` of the oldest post held (see `pause.ts`). */
  oldestSeq(): number | undefined {
    const rows = this.ring.newestFirst();
    return rows[rows.length - 1]?.seq;
  }

  /** Most used hashtags in the window, most used first (ties by name). */
  top(): readonly HashtagCount[] {
    this.topCache ??= [...this.counts.entries()]
      .map(([tag, count]) => ({ tag, count }))
      .sort((a, b) => b.count - a.count || (a.tag < b.tag ? -1 : 1))
      .slice(0, this.options.topHashtags);
    return this.topCache;
  }

  /** Distinct hashtags currently counted (bounded by the window). */
  get distinctHashtags(): number {
    return this.counts.size;
  }

  private shows(author: string): boolean {
    return this.authors.size === 0 || this.authors.has(author);
  }

  private count(tags: readonly string[]): void {
    const unique = [...new Set(tags.map(normaliseTag).filter(Boolean))];
    this.window.push(unique);
    for (const t of unique) this.counts.set(t, (this.counts.get(t) ?? 0) + 1);
    while (this.window.length > this.options.hashtagWindow) {
      const gone = this.window.shift() ?? [];
      for (const t of gone) {
        const n = (this.counts.get(t) ?? 0) - 1;
        if (n <= 0) this.counts.delete(t);
        else this.counts.set(t, n);
      }
    }
  }
}
