import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SocialPostSchema, type SocialPost } from "../gen/streamweaver/v1/events_pb";
import { FeedState } from "./feed";

const post = (author: string, hashtags: string[] = []): SocialPost => create(SocialPostSchema, { author, hashtags, text: "t" });

describe("FeedState", () => {
  it("lists the newest maxPosts posts, newest first", () => {
    const s = new FeedState({ maxPosts: 30, hashtagWindow: 100, topHashtags: 5 });
    for (let i = 0; i < 45; i++) s.apply([post(`a${i}`)]);
    s.apply([post("x"), post("y")]);
    expect(s.list()).toHaveLength(30);
    expect(s.list().map((p) => p.author).slice(0, 3)).toEqual(["y", "x", "a44"]);
    expect(new Set(s.list().map((p) => p.seq)).size).toBe(30);
  });

  it("ranks hashtags over a bounded window of recent posts", () => {
    const s = new FeedState({ maxPosts: 5, hashtagWindow: 3, topHashtags: 2 });
    s.apply([post("a", ["rust", "kafka"]), post("b", ["Rust"]), post("c", ["#grpc", "rust", "rust"])]);
    expect(s.top()).toEqual([
      { tag: "rust", count: 3 },
      { tag: "grpc", count: 1 },
    ]);
    s.apply([post("d", ["grpc"]), post("e", ["grpc"]), post("f", [])]);
    // Only the last three posts (grpc, grpc, none) count now.
    expect(s.top()).toEqual([{ tag: "grpc", count: 2 }]);
    expect(s.distinctHashtags).toBe(1);
  });
});
