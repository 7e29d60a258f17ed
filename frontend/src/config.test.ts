import { describe, expect, it } from "vitest";
import { resolveConfig, webSocketUrl } from "./config";

describe("resolveConfig", () => {
  it("defaults to port 8080 on the page's host and the WebSocket transport", () => {
    expect(resolveConfig("", "dash.local", undefined)).toEqual({
      gatewayUrl: "http://dash.local:8080",
      transport: "ws",
    });
  });

  it("reads the gateway's heartbeat interval in seconds, within bounds", () => {
    expect(resolveConfig("?heartbeat=5", "h", undefined).heartbeatMs).toBe(5_000);
    expect(resolveConfig("?heartbeat=2.5s", "h", undefined).heartbeatMs).toBe(2_500);
    expect(resolveConfig("?heartbeat=0", "h", undefined).heartbeatMs).toBeUndefined();
    expect(resolveConfig("?heartbeat=soon", "h", undefined).heartbeatMs).toBeUndefined();
  });

  it("prefers ?gateway=, then the build-time URL", () => {
    expect(resolveConfig("?gateway=http://10.0.0.2:9000/", "h", "http://built:1")).toEqual({
      gatewayUrl: "http://10.0.0.2:9000",
      transport: "ws",
    });
    expect(resolveConfig("?transport=grpc-web", "h", "https://built.example")).toEqual({
      gatewayUrl: "https://built.example",
      transport: "grpc-web",
    });
    expect(resolveConfig("?gateway=javascript:alert(1)&transport=carrier-pigeon", "h", "").transport).toBe("ws");
    expect(resolveConfig("?transport=sse", "h", "").transport).toBe("sse");
    expect(resolveConfig("?gateway=javascript:alert(1)", "h", "").gatewayUrl).toBe("http://h:8080");
  });

  it("derives the WebSocket endpoint", () => {
    expect(webSocketUrl("http://127.0.0.1:8080")).toBe("ws://127.0.0.1:8080/ws");
    expect(webSocketUrl("https://gw.example/base/")).toBe("wss://gw.example/base/ws");
  });
});
