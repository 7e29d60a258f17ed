import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, type SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { webSocketTransport, WebSocketClosedError } from "./ws";

/** Just enough of a WebSocket for the transport. */
class FakeSocket {
  readyState = 0;
  sent: string[] = [];
  closed: number | undefined;
  protocol = "";
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[] = [],
  ) {}
  send(text: string): void {
    this.sent.push(text);
  }
  close(code: number): void {
    this.closed = code;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("webSocketTransport", () => {
  it("sends the request as JSON on open and yields one response per text frame", async () => {
    let socket: FakeSocket | undefined;
    const t = webSocketTransport("https://gw.example:8443/", (url) => {
      socket = new FakeSocket(url);
      return socket as unknown as WebSocket;
    });
    const controller = new AbortController();
    let opened = 0;
    const got: SubscribeResponse[] = [];
    const done = (async () => {
      for await (const r of t.open(create(SubscribeRequestSchema, { topics: ["server_logs"] }), controller.signal, {
        onOpen: () => opened++,
      })) {
        got.push(r);
        if (got.length === 3) controller.abort();
      }
    })();
    await tick();
    expect(socket?.url).toBe("wss://gw.example:8443/ws");
    socket?.open();
    expect(opened).toBe(1);
    expect(socket?.sent).toEqual(['{"topics":["server_logs"]}']);
    socket?.onmessage?.({ data: '{"heartbeat":{}}' });
    socket?.onmessage?.({ data: "garbage" });
    socket?.onmessage?.({ data: '{"error":{"code":"INVALID_ARGUMENT","message":"x"}}' });
    await done;
    expect(got.map((r) => r.kind.case)).toEqual(["heartbeat", "error", "error"]);
    expect(socket?.closed).toBe(1000);
  });

  it("asks for batched frames and yields every response of an array frame in order", async () => {
    let socket: FakeSocket | undefined;
    const t = webSocketTransport("http://127.0.0.1:8080", (url, protocols) => {
      socket = new FakeSocket(url, protocols);
      return socket as unknown as WebSocket;
    });
    const controller = new AbortController();
    const got: SubscribeResponse[] = [];
    const done = (async () => {
      for await (const r of t.open(create(SubscribeRequestSchema), controller.signal)) {
        got.push(r);
        if (got.length === 4) controller.abort();
      }
    })();
    await tick();
    expect(socket?.protocols).toEqual(["streamweaver.v1.batch"]);
    if (socket) socket.protocol = "streamweaver.v1.batch";
    socket?.open();
    socket?.onmessage?.({
      data: '[{"event":{"topic":"server_logs","offset":"7"}},{"heartbeat":{}},{"event":{"topic":"server_logs","offset":"8"}}]',
    });
    socket?.onmessage?.({ data: "[not json" });
    await done;
    expect(got.map((r) => r.kind.case)).toEqual(["event", "heartbeat", "event", "error"]);
    const offsets = got.flatMap((r) => (r.kind.case === "event" ? [r.kind.value.offset] : []));
    expect(offsets).toEqual([7n, 8n]);
  });

  it("fails the iteration when the socket closes", async () => {
    let socket: FakeSocket | undefined;
    const t = webSocketTransport("http://127.0.0.1:8080", (url) => {
      socket = new FakeSocket(url);
      return socket as unknown as WebSocket;
    });
    const run = (async () => {
      for await (const _ of t.open(create(SubscribeRequestSchema), new AbortController().signal)) {
        // nothing arrives
      }
    })();
    await tick();
    expect(socket?.url).toBe("ws://127.0.0.1:8080/ws");
    socket?.onclose?.({ code: 1006, reason: "" });
    await expect(run).rejects.toBeInstanceOf(WebSocketClosedError);
  });
});
