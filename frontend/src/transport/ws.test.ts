import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { SubscribeRequestSchema, type SubscribeResponse } from "../gen/streamweaver/v1/stream_pb";
import { webSocketTransport, WebSocketClosedError } from "./ws";

/** Just enough of a WebSocket for the transport. */
class FakeSocket {
  readyState = 0;
  sent: string[] = [];
  closed: number | undefined;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  constructor(readonly url: string) {}
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
