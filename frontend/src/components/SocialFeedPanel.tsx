/** SocialFeedPanel: newest posts first (from `social_feed`), and the top hashtags. */
import { memo } from "react";
import { formatClock } from "../format";
import type { HashtagCount, PostRow } from "../state/feed";

const Post = memo(function Post({ post }: { post: PostRow }) {
  return (
    <li className="post" data-testid="post-row" data-seq={post.seq}>
      <div className="post-head">
        <span className="author">@{post.author}</span>
        <span className="time">{formatClock(post.timeMs)}</span>
      </div>
      <p className="post-text">{post.text}</p>
      <div className="post-foot">
        <span className="chips">
          {post.hashtags.map((tag, i) => (
            <span className="chip" key={`${tag}-${i}`}>
              #{tag}
            </span>
          ))}
        </span>
        <span className="likes" title="likes">
          ♥ {post.likes}
        </span>
        <span className="reposts" title="reposts">
          ⟳ {post.reposts}
        </span>
      </div>
    </li>
  );
});

export function SocialFeedPanel({
  posts,
  hashtags,
  eps,
}: {
  posts: readonly PostRow[];
  hashtags: readonly HashtagCount[];
  eps: string;
}) {
  return (
    <section className="panel" data-testid="panel-social-feed" aria-labelledby="feed-title">
      <header className="panel-head">
        <h2 id="feed-title">Social feed</h2>
        <span className="panel-meta">{eps}/s</span>
      </header>
      <div className="top-hashtags" data-testid="top-hashtags" aria-label="Top hashtags">
        {hashtags.length === 0 ? (
          <span className="muted">No hashtags yet</span>
        ) : (
          hashtags.map((h) => (
            <span className="chip chip-top" key={h.tag}>
              #{h.tag} <b>{h.count}</b>
            </span>
          ))
        )}
      </div>
      <div className="panel-body">
        {posts.length === 0 ? (
          <p className="empty">Waiting for posts…</p>
        ) : (
          <ul className="feed">
            {posts.map((post) => (
              <Post key={post.seq} post={post} />
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}
