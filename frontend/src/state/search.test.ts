import { describe, expect, it } from "vitest";
import { celString, filterByText, literalRegex, parseNames, queryWords, textFilterExpression } from "./search";

describe("search", () => {
  it("splits a names box into distinct names, without @", () => {
    expect(parseNames(" payment-service, auth-service  payment-service ,")).toEqual(["payment-service", "auth-service"]);
    expect(parseNames("@ada_l @grace_h")).toEqual(["ada_l", "grace_h"]);
    expect(parseNames("   ")).toEqual([]);
  });

  it("keeps rows holding every word, ignoring case; an empty query keeps the same array", () => {
    const rows = [{ haystack: "upstream request timed out\npayment-service" }, { haystack: "get /orders completed\norder-service" }];
    expect(filterByText(rows, "")).toBe(rows);
    expect(filterByText(rows, "  TIMED  payment ")).toEqual([rows[0]]);
    expect(filterByText(rows, "timed order")).toEqual([]);
    expect(queryWords("A  b")).toEqual(["a", "b"]);
  });

  it("writes the same narrowing as a CEL expression for SubscribeRequest.filter", () => {
    expect(textFilterExpression("log_entry", ["message", "service"], "")).toBeUndefined();
    expect(textFilterExpression("log_entry", ["message"], "timed")).toBe('log_entry.message.matches("(?i)timed")');
    expect(textFilterExpression("log_entry", ["message", "service"], "a.b pay")).toBe(
      '(log_entry.message.matches("(?i)a\\\\.b") || log_entry.service.matches("(?i)a\\\\.b")) && ' +
        '(log_entry.message.matches("(?i)pay") || log_entry.service.matches("(?i)pay"))',
    );
  });

  it("escapes CEL strings and regular expressions", () => {
    expect(celString('say "hi"\\\n')).toBe('"say \\"hi\\"\\\\\\n"');
    expect(celString("\u0001")).toBe('"\\x01"');
    expect(literalRegex("GET /orders/{id}?x=1+2")).toBe("GET /orders/\\{id\\}\\?x=1\\+2");
  });
});
