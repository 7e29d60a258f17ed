// Browser end-to-end test of the StreamWeaver dashboard, run with `node --test frontend/e2e/`.
//
// It assumes a harness has started the whole system and tells it where things are:
//   DASHBOARD_URL      the dashboard, e.g. http://127.0.0.1:3000 (the test skips without it)
//   GATEWAY_URL        the gateway, e.g. http://127.0.0.1:8080 (passed as ?gateway=; optional)
//   GATEWAY_STOP_CMD   shell command that stops the gateway
//   GATEWAY_START_CMD  shell command that starts it again (may return before it is ready)
//   ARTIFACTS_DIR      where dashboard.png goes (default: <repo>/.artifacts)
//   CHROMIUM_PATH      browser binary (default: /usr/bin/chromium)
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchChromium } from "./chromium.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const {
  DASHBOARD_URL,
  GATEWAY_URL,
  GATEWAY_STOP_CMD,
  GATEWAY_START_CMD,
  ARTIFACTS_DIR = path.resolve(here, "..", "..", ".artifacts"),
} = process.env;

const TOPICS = ["stock_trades", "social_feed", "server_logs"];
const ROWS = { "trade-row": "stock trades", "post-row": "social feed", "log-row": "server logs" };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(label, command) {
  assert.ok(command, `${label} is not set`);
  execSync(command, { stdio: "inherit", shell: "/bin/sh", timeout: 120_000 });
}

/** Reads the header figures and row counts the page shows. */
async function figures(page) {
  return page.evaluate((topics) => {
    const q = (id) => document.querySelector(`[data-testid="${id}"]`);
    const eps = {};
    const totals = {};
    for (const t of topics) {
      eps[t] = Number(q(`eps-${t}`)?.getAttribute("data-value") ?? "NaN");
      totals[t] = Number(q(`eps-${t}`)?.getAttribute("data-total") ?? "NaN");
    }
    const count = (id) => document.querySelectorAll(`[data-testid="${id}"]`).length;
    return {
      status: q("connection-status")?.textContent ?? "",
      transport: q("transport-label")?.textContent ?? "",
      eps,
      totals,
      total: Number(q("events-total")?.textContent ?? "NaN"),
      latencyP50: q("latency-p50")?.textContent ?? "",
      latencyP95: q("latency-p95")?.textContent ?? "",
      gaps: q("gap-count")?.textContent ?? "",
      rows: { trades: count("trade-row"), posts: count("post-row"), logs: count("log-row") },
      firstPostSeq: q("post-row")?.getAttribute("data-seq") ?? "",
      clientFiltered: Number(q("panel-server-logs")?.getAttribute("data-client-filtered") ?? "NaN"),
    };
  }, TOPICS);
}

function describeFigures(f) {
  const eps = TOPICS.map((t) => `${t}=${f.eps[t].toFixed(1)}/s`).join(" ");
  return `${f.transport} ${f.status}: ${eps}; latency p50=${f.latencyP50} p95=${f.latencyP95}; gaps=${f.gaps}; rows=${JSON.stringify(f.rows)}; events=${f.total}`;
}

async function waitForStatus(page, wanted, timeout) {
  await page.waitForFunction(
    (w) => document.querySelector('[data-testid="connection-status"]')?.textContent === w,
    wanted,
    { timeout, polling: 100 },
  );
}

/** Waits until every topic's received-events total has grown past `before`. */
async function waitForNewEvents(page, before, topics, timeout) {
  await page.waitForFunction(
    ({ before, topics }) =>
      topics.every((t) => {
        const el = document.querySelector(`[data-testid="eps-${t}"]`);
        return Number(el?.getAttribute("data-total") ?? "0") > before[t];
      }),
    { before, topics },
    { timeout, polling: 200 },
  );
}

test("StreamWeaver dashboard, end to end", { timeout: 300_000 }, async (t) => {
  if (!DASHBOARD_URL) {
    t.skip("DASHBOARD_URL is not set: this test needs the whole system running (see frontend/e2e/dashboard.test.mjs)");
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const browser = await launchChromium();
  const pageErrors = [];
  let page;
  let screenshotTaken = false;
  try {
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") t.diagnostic(`browser console: ${msg.text()}`);
    });

    const url = new URL(DASHBOARD_URL);
    url.searchParams.set("transport", "ws");
    if (GATEWAY_URL) url.searchParams.set("gateway", GATEWAY_URL);

    await t.test("the three panels fill with rows over WebSocket", async () => {
      await page.goto(url.toString(), { waitUntil: "load" });
      for (const panel of ["panel-stock-trades", "panel-social-feed", "panel-server-logs"]) {
        await page.locator(`[data-testid="${panel}"]`).waitFor({ timeout: 10_000 });
      }
      for (const [row, name] of Object.entries(ROWS)) {
        await page
          .locator(`[data-testid="${row}"]`)
          .first()
          .waitFor({ timeout: 30_000 })
          .catch((e) => assert.fail(`no ${name} rows within 30 s: ${e.message}`));
      }
      await waitForStatus(page, "connected", 5_000);
      await sleep(2_000); // let the rates settle
      const f = await figures(page);
      t.diagnostic(`over WebSocket: ${describeFigures(f)}`);
      console.log(`events/sec shown (ws): ${TOPICS.map((k) => `${k}=${f.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(f.transport, "ws");
      for (const topic of TOPICS) assert.ok(f.eps[topic] > 0, `eps-${topic} is ${f.eps[topic]}`);
    });

    await t.test("switching to grpc-web keeps the panels live, without reload", async () => {
      const before = await figures(page);
      await page.locator('[data-testid="transport-grpc-web"]').click();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="transport-label"]')?.textContent === "grpc-web",
        undefined,
        { timeout: 5_000 },
      );
      await waitForStatus(page, "connected", 15_000);
      await waitForNewEvents(page, before.totals, TOPICS, 30_000);
      await sleep(2_000);
      const f = await figures(page);
      t.diagnostic(`over grpc-web: ${describeFigures(f)}`);
      console.log(`events/sec shown (grpc-web): ${TOPICS.map((k) => `${k}=${f.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(f.transport, "grpc-web");
      assert.ok(new URL(page.url()).searchParams.get("transport") === "grpc-web", "URL remembers the transport");
      for (const topic of TOPICS) assert.ok(f.eps[topic] > 0, `eps-${topic} is ${f.eps[topic]} over grpc-web`);
    });

    await t.test("the level filter reaches the server: only ERROR lines remain", async () => {
      for (const level of ["DEBUG", "INFO", "WARN"]) {
        const box = page.locator(`[data-testid="level-filter-${level}"]`);
        if (await box.isChecked()) await box.uncheck();
      }
      assert.ok(await page.locator('[data-testid="level-filter-ERROR"]').isChecked());
      // Lines already in flight may still arrive (and are dropped by the client); after a few
      // seconds the server must send only ERROR lines.
      await sleep(4_000);
      await page
        .locator('[data-testid="log-row"]')
        .first()
        .waitFor({ timeout: 30_000 })
        .catch((e) => assert.fail(`no ERROR log lines within 30 s: ${e.message}`));
      const filteredBefore = (await figures(page)).clientFiltered;
      await sleep(4_000);
      const levels = await page.locator('[data-testid="log-row"]').evaluateAll((rows) =>
        rows.map((r) => r.getAttribute("data-level")),
      );
      assert.ok(levels.length > 0);
      assert.deepEqual([...new Set(levels)], ["ERROR"], `visible levels: ${levels.join(",")}`);
      const f = await figures(page);
      t.diagnostic(`ERROR only: ${levels.length} rows; non-ERROR lines the server still sent: ${f.clientFiltered}`);
      assert.equal(
        f.clientFiltered,
        filteredBefore,
        "the server kept sending non-ERROR lines after the filter change (SubscribeRequest.logLevels ignored?)",
      );
    });

    await t.test("a gateway restart is survived without reload", async () => {
      run("GATEWAY_STOP_CMD", GATEWAY_STOP_CMD);
      await waitForStatus(page, "disconnected", 20_000);
      t.diagnostic(`after stop: ${describeFigures(await figures(page))}`);
      await sleep(1_000);
      run("GATEWAY_START_CMD", GATEWAY_START_CMD);
      await waitForStatus(page, "connected", 60_000);
      const before = await figures(page);
      await waitForNewEvents(page, before.totals, ["stock_trades", "social_feed"], 60_000);
      await page.waitForFunction(
        (seq) => (document.querySelector('[data-testid="post-row"]')?.getAttribute("data-seq") ?? "") !== seq,
        before.firstPostSeq,
        { timeout: 30_000, polling: 200 },
      );
      await sleep(2_000);
      const f = await figures(page);
      t.diagnostic(`after restart: ${describeFigures(f)}`);
      console.log(`events/sec shown (after restart): ${TOPICS.map((k) => `${k}=${f.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(f.status, "connected");
    });

    await t.test("screenshot", async () => {
      const file = path.join(ARTIFACTS_DIR, "dashboard.png");
      await page.screenshot({ path: file, fullPage: true });
      screenshotTaken = true;
      t.diagnostic(`screenshot: ${file}`);
    });

    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  } finally {
    if (page && !screenshotTaken) {
      await page
        .screenshot({ path: path.join(ARTIFACTS_DIR, "dashboard-failure.png"), fullPage: true })
        .catch(() => undefined);
    }
    await browser.close();
  }
});
