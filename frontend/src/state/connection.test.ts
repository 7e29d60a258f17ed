import { describe, expect, it } from "vitest";
import { INITIAL_CONNECTION, reduceConnection, summarize, type StreamConnection } from "./connection";

const GW = "http://gw:8080";
const all = (c: StreamConnection) => ({ trades: c, feed: c, logs: c });

describe("the connection sentence", () => {
  it("says nothing while every subscription is connected", () => {
    const up = reduceConnection(INITIAL_CONNECTION, { status: "connected" }, 0);
    expect(summarize(all(up), 0, GW)).toEqual({ state: "connected", headline: "connected", banner: undefined, down: [] });
  });

  it("says it is connecting at first, and that it cannot connect once an attempt failed", () => {
    expect(summarize(all(INITIAL_CONNECTION), 0, GW)).toMatchObject({
      state: "connecting",
      banner: "Connecting to the gateway at http://gw:8080…",
    });
    const refused = reduceConnection(INITIAL_CONNECTION, { status: "disconnected", detail: "WebSocket closed (code 1006)", retryInMs: 2_600 }, 10_000);
    expect(summarize(all(refused), 10_000, GW)).toEqual({
      state: "unreachable",
      headline: "cannot connect",
      banner: "Cannot connect to the gateway at http://gw:8080 — retrying in 3 s (WebSocket closed (code 1006))",
      down: ["trades", "feed", "logs"],
    });
    const retrying = reduceConnection(refused, { status: "connecting" }, 12_600);
    // While one subscription tries again, another's countdown is what the reader can use.
    expect(summarize({ trades: retrying, feed: refused, logs: retrying }, 11_000, GW).banner).toBe(
      "Cannot connect to the gateway at http://gw:8080 — retrying in 2 s (WebSocket closed (code 1006))",
    );
    expect(summarize(all(retrying), 12_600, GW).banner).toBe(
      "Cannot connect to the gateway at http://gw:8080 — trying again now (WebSocket closed (code 1006))",
    );
  });

  it("counts down to the next attempt and gives the age of the last data", () => {
    const up: StreamConnection = { ...reduceConnection(INITIAL_CONNECTION, { status: "connected" }, 0), lastMessageAt: 5_000 };
    const down = reduceConnection(up, { status: "disconnected", detail: "reset", retryInMs: 3_000 }, 17_000);
    expect(down).toMatchObject({ status: "disconnected", everConnected: true, failures: 1, retryAt: 20_000 });
    const s = summarize(all(down), 17_000, GW);
    expect(s.state).toBe("reconnecting");
    expect(s.headline).toBe("reconnecting");
    expect(s.banner).toBe("Gateway disconnected — retrying in 3 s · last data 12 s ago");
    expect(summarize(all(down), 19_100, GW).banner).toBe("Gateway disconnected — retrying in 1 s · last data 14 s ago");
    const again = reduceConnection(down, { status: "connected" }, 21_000);
    expect(again).toMatchObject({ failures: 0, retryAt: undefined, detail: "" });
  });

  it("names the panels whose subscription is down when the others are fine", () => {
    const up = reduceConnection(INITIAL_CONNECTION, { status: "connected" }, 0);
    const down = reduceConnection(up, { status: "disconnected", detail: "x", retryInMs: 500 }, 1_000);
    const s = summarize({ trades: up, feed: up, logs: down }, 1_000, GW);
    expect(s.down).toEqual(["logs"]);
    expect(s.banner).toBe("Server logs disconnected — retrying in 1 s · no data received yet");
  });

  it("shows a restart on purpose (new filter, other transport) as down only if it takes a while", () => {
    const up = reduceConnection(INITIAL_CONNECTION, { status: "connected" }, 0);
    const restarting = reduceConnection(up, { status: "connecting" }, 10_000);
    expect(summarize({ trades: up, feed: restarting, logs: up }, 12_000, GW).state).toBe("connected");
    expect(summarize({ trades: up, feed: restarting, logs: up }, 13_500, GW)).toMatchObject({
      state: "reconnecting",
      banner: "Social feed reconnecting · no data received yet",
    });
  });
});
