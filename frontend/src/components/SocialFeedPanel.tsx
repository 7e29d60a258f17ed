/**
 * SocialFeedPanel: newest posts first (from `social_feed`) and the top hashtags. Like the log
 * tail it pauses, narrows by author and text at the gateway (the text as a CEL filter; on the
 * page too, for posts held before), and opens any post in full. It owns its filter and its subscription.
 */
import { memo, useCallback, useMemo, useState } from "react";
import { formatClock, formatDateTime, formatInt, formatRate, UNKNOWN } from "../format";
import { feedRequest, postSearchFilter } from "../requests";
import type { PostRow } from "../state/feed";
import type { FeedPanelView } from "../state/store";
import { parseNames } from "../state/search";
import { LiveListBody, RowOrigin } from "./LiveListBody";
import { NamesField, PauseButton, SearchField, SearchRefused, useSeenNames } from "./LiveListControls";
import { Panel, PanelFigure, type PanelProps } from "./Panel";
import { useLiveList } from "./useLiveList";
import { useServerSearch } from "./useServerSearch";
import { useStream } from "./useStream";

const POST_HEIGHT = 84;
const rowHeight = (): number => POST_HEIGHT;

const Post = memo(function Post({ post, onOpen }: { post: PostRow; onOpen: (post: PostRow) => void }) {
  return (
    <button type="button" className="post" data-testid="post-row" data-seq={post.seq} onClick={() => onOpen(post)}>
      <span className="post-head">
        <span className="author">@{post.author}</span>
        <span className="time">{formatClock(post.timeMs)}</span>
      </span>
      <span className="post-text">{post.text}</span>
      <span className="post-foot">
        <span className="chips">
          {post.hashtags.map((tag, i) => (
            <span className="chip" key={`${tag}-${i}`}>
              #{tag}
            </span>
          ))}
        </span>
        <span className="counts num">
          {formatInt(post.likes)} likes · {formatInt(post.reposts)} reposts
        </span>
      </span>
    </button>
  );
});

function PostDetail({ post }: { post: PostRow }) {
  return (
    <dl className="detail" data-testid="post-detail">
      <dt>Post</dt>
      <dd className="detail-text">{post.text || UNKNOWN}</dd>
      <dt>Author</dt>
      <dd>@{post.author}</dd>
      <dt>Time</dt>
      <dd className="num">{formatDateTime(post.timeMs)}</dd>
      <dt>Hashtags</dt>
      <dd>{post.hashtags.length ? post.hashtags.map((t) => `#${t}`).join(" ") : UNKNOWN}</dd>
      <dt>Likes</dt>
      <dd className="num">{formatInt(post.likes)}</dd>
      <dt>Reposts</dt>
      <dd className="num">{formatInt(post.reposts)}</dd>
      <dt>Post id</dt>
      <dd className="mono">{post.postId || UNKNOWN}</dd>
      <RowOrigin topic="social_feed" row={post} />
    </dl>
  );
}

export const SocialFeedPanel = memo(function SocialFeedPanel({
  live,
  data,
  transport,
  heartbeatMs,
  hiddenOnNarrow,
}: PanelProps<FeedPanelView>) {
  const [authors, setAuthors] = useState<readonly string[]>([]);
  const [query, setQuery] = useState("");
  const search = useServerSearch(query, postSearchFilter);
  const request = useMemo(() => feedRequest(authors, search.filter), [authors, search.filter]);
  useStream(live, "feed", transport, request, heartbeatMs, search.onRefused);

  const onAuthors = useCallback(
    (text: string) => {
      const next = parseNames(text);
      live.setAuthors(next);
      setAuthors(next);
    },
    [live],
  );
  const keep = useCallback((p: PostRow) => authors.length === 0 || authors.includes(p.author), [authors]);
  const list = useLiveList(data.rows, data.oldestSeq, keep, query, setQuery);
  const seenAuthors = useSeenNames(data.rows, (post) => post.author);

  const stale = data.stale;
  return (
    <Panel
      id="feed"
      title="Social feed"
      className="panel-feed"
      testId="panel-social-feed"
      stale={stale}
      hiddenOnNarrow={hiddenOnNarrow}
      extraData={{ "client-filtered": data.filteredOut, "server-filter": search.filter }}
      figures={<PanelFigure label="posts/s" value={stale ? UNKNOWN : formatRate(data.eps)} />}
    >
      <div className="top-hashtags" data-testid="top-hashtags">
        <span className="top-hashtags-label">Top hashtags (last 300 posts)</span>
        {data.hashtags.length === 0 ? (
          <span className="muted">none yet</span>
        ) : (
          data.hashtags.map((h) => (
            <span className="chip chip-top" key={h.tag}>
              #{h.tag} <b>{h.count}</b>
            </span>
          ))
        )}
      </div>
      <div className="toolbar">
        <SearchField
          label="Search"
          value={list.query}
          onChange={list.setQuery}
          placeholder="words, #tag"
          testId="search-feed"
        />
        <NamesField
          label="Authors"
          applied={authors.join(", ")}
          onApply={onAuthors}
          placeholder="all"
          suggestions={seenAuthors}
          testId="author-filter"
        />
        <PauseButton list={list} what="posts" testId="pause-feed" />
      </div>
      <SearchRefused message={search.refused} testId="feed-search-refused" />
      <LiveListBody
        list={list}
        stale={stale}
        noun="posts"
        label="Posts"
        testIds={{ status: "feed-status", list: "post-list", dialog: "post-dialog" }}
        rowHeight={rowHeight}
        renderRow={(post, open) => <Post post={post} onOpen={open} />}
        detail={(post) => ({ title: `@${post.author} · ${formatClock(post.timeMs)}`, body: <PostDetail post={post} /> })}
      />
    </Panel>
  );
});
