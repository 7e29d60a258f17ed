import { describe, expect, it } from "vitest";
import { logSearchFilter, postSearchFilter } from "./requests";

describe("search filters", () => {
  it("say the log search in CEL: fields, level names, status codes", () => {
    expect(logSearchFilter("")).toBe("");
    expect(logSearchFilter("Err 50")).toBe(
      '(log_entry.message.matches("(?i)err") || log_entry.endpoint.matches("(?i)err") || ' +
        'log_entry.service.matches("(?i)err") || log_entry.host.matches("(?i)err") || log_entry.level in [4]) && ' +
        '(log_entry.message.matches("(?i)50") || log_entry.endpoint.matches("(?i)50") || ' +
        'log_entry.service.matches("(?i)50") || log_entry.host.matches("(?i)50") || ' +
        '(log_entry.status_code != 0 && string(log_entry.status_code).contains("50")))',
    );
    // At most four words go to the gateway; the page applies the rest.
    expect(logSearchFilter("a b c d e").split(" && ")).toHaveLength(4);
  });

  it("say the post search in CEL: @author, text, #hashtags", () => {
    expect(postSearchFilter("#rust")).toBe(
      '(("@" + social_post.author).matches("(?i)#rust") || social_post.text.matches("(?i)#rust") || ' +
        'social_post.hashtags.exists(t, ("#" + t).matches("(?i)#rust")))',
    );
  });
});
