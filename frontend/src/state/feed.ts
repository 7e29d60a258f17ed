/**
 * The social feed: newest posts first (at most `maxPosts`) and the top hashtags among the last
 * `hashtagWindow` posts. Both are bounded, whatever the rate of posts.
 */
import type { SocialPost } from "../gen/streamweaver/v1/events_pb";
import { timestampMs } from "./time";

export interface PostRow {
  /** Client-side sequence number: a unique React key even if the server repeats a post. */
  readonly seq: number;
  readonly postId: string;
  readonly author: string;
  readonly text: string;
  readonly hashtags: readonly string[];
  readonly likes: number;
  readonly reposts: number;
  readonly timeMs: number | undefined;
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

export const DEFAULT_FEED_OPTIONS: FeedOptions = { maxPosts: 30, hashtagWindow: 300, topHashtags: 10 };

export class FeedState {
  private posts: readonly PostRow[] = [];
  private seq = 0;
  /** Hashtags of the last `hashtagWindow` posts, oldest first, and their counts. */
  private readonly window: (readonly string[])[] = [];
  private readonly counts = new Map<string, number>();
  private topCache: readonly HashtagCount[] | undefined;

  constructor(private readonly options: FeedOptions = DEFAULT_FEED_OPTIONS) {}

  apply(posts: readonly SocialPost[]): void {
    if (posts.length === 0) return;
    for (const p of posts) this.count(p.hashtags);
    const fresh = posts
      .slice(-this.options.maxPosts)
      .reverse()
      .map(
        (p): PostRow => ({
          seq: ++this.seq,
          postId: p.postId,
          author: p.author,
          text: p.text,
          hashtags: p.hashtags.slice(0, 12),
          likes: p.likes,
          reposts: p.reposts,
          timeMs: timestampMs(p.timestamp),
        }),
      );
    this.posts = [...fresh, ...this.posts].slice(0, this.options.maxPosts);
    this.topCache = undefined;
  }

  /** Newest first. */
  list(): readonly PostRow[] {
    return this.posts;
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

  private count(tags: readonly string[]): void {
    const unique = [...new Set(tags.map((t) => t.replace(/^#/, "").toLowerCase()).filter(Boolean))];
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
