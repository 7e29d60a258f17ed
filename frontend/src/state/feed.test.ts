import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { SocialPostSchema } from "../gen/streamweaver/v1/events_pb";
import { arrival } from "../test/fixtures";
import { FeedState } from "./feed";

const post = (author: string, hashtags: string[] = [], text = "t") =>
  arrival(create(SocialPostSchema, { author, hashtags, text }));

describe("FeedState", () => {
  it("holds the newest maxPosts posts, newest first, numbered consecutively", () => {
    const s = new FeedState({ maxPosts: 30, hashtagWindow: 100, topHashtags: 5 });
    for (let i = 0; i < 45; i++) s.apply([post(`a${i}`)]);
    s.apply([post("x"), post("y")]);
    expect(s.list()).toHaveLength(30);
    expect(s.list().map((p) => p.author).slice(0, 3)).toEqual(["y", "x", "a44"]);
    expect(s.list()[0]?.seq).toBe(47);
    expect(s.oldestSeq()).toBe(18);
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

  it("narrows to the chosen authors at once, and drops posts of others still in flight", () => {
    const s = new FeedState();
    s.apply([post("ada"), post("alan"), post("ada")]);
    s.setAuthors(["ada"]);
    expect(s.list().map((p) => p.author)).toEqual(["ada", "ada"]);
    s.apply([post("alan"), post("ada")]);
    expect(s.list().map((p) => p.author)).toEqual(["ada", "ada", "ada"]);
    expect(s.filteredOut).toBe(1);
    s.setAuthors([]);
    s.apply([post("alan")]);
    expect(s.list()[0]?.author).toBe("alan");
  });

  it("makes a lower-cased haystack of author, text and hashtags for the search", () => {
    const s = new FeedState();
    s.apply([post("Grace_H", ["#Kafka"], "Shipped A Release")]);
    expect(s.list()[0]?.haystack).toBe("@grace_h\nshipped a release\n#kafka");
  });
});
