// Server-Sent Events in a real headless Chromium: a page on the dashboard's origin opens the
// browser's own EventSource on the gateway's /sse (cross-origin, so CORS is exercised), the
// gateway is restarted under it, and the EventSource reconnects by itself with Last-Event-ID.
// What the page received must miss nothing and repeat nothing, per partition.
//
// Needs the harness of dashboard.test.mjs (scripts/browser-test.sh): DASHBOARD_URL,
// GATEWAY_URL, GATEWAY_STOP_CMD, GATEWAY_START_CMD. Skips without them.
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { test } from "node:test";
import { launchChromium } from "./chromium.mjs";

const { DASHBOARD_URL, GATEWAY_URL, GATEWAY_STOP_CMD, GATEWAY_START_CMD } = process.env;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(label, command) {
  assert.ok(command, `${label} is not set`);
  execSync(command, { stdio: "inherit", shell: "/bin/sh", timeout: 120_000 });
}

/** Polls `read` until `done(value)` or `ms` pass; returns the last value. */
async function until(read, done, ms, what) {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value)) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(250);
    value = await read();
  }
  return value;
}

/** Offsets that are not one more than the one before, per partition: [partition, prev, next]. */
function breaks(events) {
  const last = new Map();
  const found = [];
  for (const [partition, offset] of events) {
    const prev = last.get(partition);
    if (prev !== undefined && offset !== prev + 1) found.push([partition, prev, offset]);
    last.set(partition, offset);
  }
  return found;
}

test("an EventSource resumes across a gateway restart: nothing missed, nothing twice", async (t) => {
  if (!DASHBOARD_URL || !GATEWAY_URL) {
    t.skip("DASHBOARD_URL and GATEWAY_URL are not set (run scripts/browser-test.sh)");
    return;
  }
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  // A page the dashboard's server serves: the EventSource is cross-origin, as a deployed page's
  // would be (Chromium lets only a page it knows is local reach the loopback gateway).
  await page.goto(DASHBOARD_URL);

  const filter = "log_entry.level >= LOG_LEVEL_WARN";
  const urls = {
    all: `${GATEWAY_URL}/sse?topics=server_logs`,
    warn: `${GATEWAY_URL}/sse?topics=server_logs&filter=${encodeURIComponent(filter)}`,
  };
  await page.evaluate((urls) => {
    window.streams = {};
    window.sources = [];
    for (const [name, url] of Object.entries(urls)) {
      const seen = { events: [], levels: [], opens: 0, errors: 0, heartbeats: 0, lastId: "" };
      window.streams[name] = seen;
      const source = new EventSource(url);
      source.onopen = () => seen.opens++;
      source.onerror = () => seen.errors++;
      source.onmessage = (ev) => {
        const response = JSON.parse(ev.data);
        seen.lastId = ev.lastEventId;
        if (response.event) {
          seen.events.push([response.event.partition ?? 0, Number(response.event.offset ?? 0)]);
          seen.levels.push(response.event.logEntry?.level ?? "");
        } else if (response.heartbeat) {
          seen.heartbeats++;
        }
      };
      window.sources.push(source);
    }
  }, urls);
  const streams = () => page.evaluate(() => window.streams);

  const before = await until(
    streams,
    (s) => s.all.events.length >= 40 && s.warn.events.length >= 3,
    60_000,
    "events before the restart",
  );
  assert.ok(before.all.lastId.length > 0, "each message carries an id (a resume token)");

  run("GATEWAY_STOP_CMD", GATEWAY_STOP_CMD);
  const stopped = await streams();
  // Events go on into Kafka while the gateway is away; the EventSource retries every second.
  await sleep(3_000);
  run("GATEWAY_START_CMD", GATEWAY_START_CMD);

  const after = await until(
    streams,
    (s) =>
      s.all.opens >= 2 &&
      s.warn.opens >= 2 &&
      s.all.events.length >= stopped.all.events.length + 200 &&
      // The filtered stream reconnects on its own schedule: wait for it too.
      s.warn.events.length > stopped.warn.events.length,
    90_000,
    "events after the reconnect",
  );
  await page.evaluate(() => window.sources.forEach((s) => s.close()));

  assert.ok(after.all.errors >= 1, "the EventSource saw the gateway go away");
  // Every partition's offsets run on one by one through the restart: no gap, no repeat.
  assert.deepEqual(breaks(after.all.events), [], "offsets skipped or repeated");
  const partitions = new Set(after.all.events.map(([p]) => p));
  assert.ok(partitions.size >= 2, `events from several partitions: ${[...partitions]}`);
  // The CEL filter held on both sides of the restart, and resuming repeated nothing.
  const levels = new Set(after.warn.levels);
  assert.ok(
    [...levels].every((l) => l === "LOG_LEVEL_WARN" || l === "LOG_LEVEL_ERROR"),
    `only WARN and ERROR: ${[...levels]}`,
  );
  const keys = after.warn.events.map(([p, o]) => `${p}/${o}`);
  assert.equal(new Set(keys).size, keys.length, "no event twice under the filter");
  assert.ok(after.warn.events.length > stopped.warn.events.length, "filtered events went on");
  console.log(
    `sse: ${after.all.events.length} events (${stopped.all.events.length} before the restart), ` +
      `${after.warn.events.length} WARN+ under the filter, ${after.all.opens} opens`,
  );
});
