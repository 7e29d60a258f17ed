import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  SlowClientPolicy,
  SubscribeRequestSchema,
  type SubscribeResponse,
} from "../gen/streamweaver/v1/stream_pb";
import { LogLevel } from "../gen/streamweaver/v1/events_pb";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventStreamError, sseTransport, sseUrl } from "./sse";

/** Just enough of an EventSource for the transport. */
class FakeEventSource {
  closed = false;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {}
  close(): void {
    this.closed = true;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("sseUrl", () => {
  it("spells every request field as the gateway's /sse parameters", () => {
    const request = create(SubscribeRequestSchema, {
      topics: ["stock_trades", "server_logs"],
      symbols: ["NVDA"],
      logLevels: [LogLevel.ERROR],
      filter: 'stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA"]',
      slowClientPolicy: SlowClientPolicy.LATEST_PER_KEY,
      sampleInterval: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }),
      startAt: { point: { case: "last", value: create(DurationSchema, { seconds: 300n }) } },
      resumeFrom: [{ topic: "stock_trades", partition: 2, offset: 41n }],
    });
    const url = new URL(sseUrl("https://gw.example:8443/base/", request));
    expect(url.origin + url.pathname).toBe("https://gw.example:8443/base/sse");
    const params = url.searchParams;
    expect(params.get("topics")).toBe("stock_trades,server_logs");
    expect(params.get("symbols")).toBe("NVDA");
    expect(params.get("logLevels")).toBe(String(LogLevel.ERROR));
    expect(params.get("filter")).toBe('stock_trade.price > 500.0 && stock_trade.symbol in ["NVDA"]');
    expect(params.get("slowClientPolicy")).toBe(String(SlowClientPolicy.LATEST_PER_KEY));
    expect(params.get("sampleInterval")).toBe("1500ms");
    expect(params.get("startLast")).toBe("300000ms");
    expect(params.get("resumeFrom")).toBe("stock_trades:2:41");
    expect(params.has("authors")).toBe(false);
  });
});

describe("sseTransport", () => {
  it("yields one response per message and fails when the stream drops", async () => {
    let source: FakeEventSource | undefined;
    const transport = sseTransport("http://127.0.0.1:8080", (url) => {
      source = new FakeEventSource(url);
      return source as unknown as EventSource;
    });
    const opened: string[] = [];
    const controller = new AbortController();
    const iterator = transport
      .open(create(SubscribeRequestSchema, { topics: ["server_logs"] }), controller.signal, {
        onOpen: () => opened.push("open"),
      })
      [Symbol.asyncIterator]();
    const first = iterator.next();
    await tick();
    expect(source?.url).toBe("http://127.0.0.1:8080/sse?topics=server_logs");
    source?.onopen?.();
    source?.onmessage?.({
      data: '{"event":{"topic":"server_logs","partition":1,"offset":"7","logEntry":{"service":"api"}}}',
    });
    const response = (await first).value as SubscribeResponse;
    expect(opened).toEqual(["open"]);
    expect(response.kind.case).toBe("event");
    if (response.kind.case === "event") expect(response.kind.value.offset).toBe(7n);
    source?.onmessage?.({ data: "not json" });
    const bad = (await iterator.next()).value as SubscribeResponse;
    expect(bad.kind.case).toBe("error");
    source?.onerror?.();
    await expect(iterator.next()).rejects.toBeInstanceOf(EventStreamError);
    expect(source?.closed).toBe(true);
  });

  it("says why a request was refused, read with fetch, as a ConnectError of its code", async () => {
    let source: FakeEventSource | undefined;
    const asked: string[] = [];
    const fetchFn = (async (url: string | URL | Request) => {
      asked.push(String(url));
      return new Response("filter error at 1:11: no field prise in log_entry\n", { status: 400 });
    }) as typeof fetch;
    const transport = sseTransport(
      "http://127.0.0.1:8080",
      (url) => {
        source = new FakeEventSource(url);
        return source as unknown as EventSource;
      },
      fetchFn,
    );
    const request = create(SubscribeRequestSchema, { topics: ["server_logs"], filter: "log_entry.prise > 1" });
    const iterator = transport.open(request, new AbortController().signal)[Symbol.asyncIterator]();
    const first = iterator.next();
    await tick();
    source?.onerror?.();
    const error = await first.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("no field prise");
    expect(asked).toEqual([source?.url]);
  });

  it("closes the stream when the subscription is aborted", async () => {
    let source: FakeEventSource | undefined;
    const transport = sseTransport("http://127.0.0.1:8080", (url) => {
      source = new FakeEventSource(url);
      return source as unknown as EventSource;
    });
    const controller = new AbortController();
    const iterator = transport
      .open(create(SubscribeRequestSchema, {}), controller.signal)
      [Symbol.asyncIterator]();
    const pending = iterator.next();
    await tick();
    controller.abort();
    expect((await pending).done).toBe(true);
    expect(source?.closed).toBe(true);
  });
});
