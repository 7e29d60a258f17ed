// Browser end-to-end test of the StreamWeaver dashboard, run with `node --test frontend/e2e/`.
//
// It assumes a harness has started the whole system and tells it where things are:
//   DASHBOARD_URL      the dashboard, e.g. http://127.0.0.1:3000 (the test skips without it)
//   GATEWAY_URL        the gateway, e.g. http://127.0.0.1:8080 (passed as ?gateway=; optional)
//   GATEWAY_STOP_CMD   shell command that stops the gateway
//   GATEWAY_START_CMD  shell command that starts it again (may return before it is ready)
//   ARTIFACTS_DIR      where the screenshots go (default: <repo>/.artifacts)
//   CHROMIUM_PATH      browser binary (default: /usr/bin/chromium)
//
// Every assertion is about what a user sees or what a screen reader is told; the screenshots
// (1440×900, 1280×720, 390×844, paused, disconnected, the dialogs) are saved for a person.
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
    const shown = {};
    const totals = {};
    for (const t of topics) {
      eps[t] = Number(q(`eps-${t}`)?.getAttribute("data-value") ?? "NaN");
      shown[t] = q(`eps-${t}`)?.textContent ?? "";
      totals[t] = Number(q(`eps-${t}`)?.getAttribute("data-total") ?? "NaN");
    }
    const count = (id) => document.querySelectorAll(`[data-testid="${id}"]`).length;
    const status = q("connection-status");
    return {
      status: status?.getAttribute("data-status") ?? "",
      headline: status?.textContent ?? "",
      transport: status?.getAttribute("data-transport") ?? "",
      eps,
      shown,
      totals,
      live: Number(q("events-total")?.getAttribute("data-value") ?? "NaN"),
      replayed: Number(q("events-replayed")?.getAttribute("data-value") ?? "NaN"),
      latencyP50: q("latency-p50")?.textContent ?? "",
      latencyP95: q("latency-p95")?.textContent ?? "",
      gaps: q("gap-count")?.getAttribute("data-value") ?? "",
      rows: { trades: count("trade-row"), posts: count("post-row"), logs: count("log-row") },
      firstPostSeq: q("post-row")?.getAttribute("data-seq") ?? "",
      clientFiltered: Number(q("panel-server-logs")?.getAttribute("data-client-filtered") ?? "NaN"),
      banner: q("connection-banner")?.textContent ?? "",
    };
  }, TOPICS);
}

function describeFigures(f) {
  const eps = TOPICS.map((t) => `${t}=${f.eps[t].toFixed(1)}/s`).join(" ");
  return `${f.transport} ${f.status}: ${eps}; latency p50=${f.latencyP50} p95=${f.latencyP95}; gaps=${f.gaps}; rows=${JSON.stringify(f.rows)}; live=${f.live} replayed=${f.replayed}`;
}

async function waitForStatus(page, wanted, timeout) {
  await page.waitForFunction(
    (w) => document.querySelector('[data-testid="connection-status"]')?.getAttribute("data-status") === w,
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

/** The `data-seq` of the log rows on screen, top first. */
const logSeqs = (page) =>
  page.locator('[data-testid="log-row"]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute("data-seq"))));

/** Elements (of the given selectors) whose content is wider than they are, and the page's own overflow. */
async function overflow(page) {
  return page.evaluate(() => {
    const doc = document.documentElement;
    const wide = [...document.querySelectorAll(".panel, .scroller, .toolbar, .topbar, .panel-head, .list-status, .banner")]
      .filter((e) => e.getClientRects().length > 0 && e.scrollWidth > e.clientWidth + 1)
      .map((e) => `${e.getAttribute("data-testid") ?? e.className}: ${e.scrollWidth} > ${e.clientWidth}`);
    return {
      pageWidth: doc.scrollWidth,
      pageHeight: doc.scrollHeight,
      viewport: { width: innerWidth, height: innerHeight },
      wide,
    };
  });
}

/** Moves the mouse to the header, off every list (a list under the pointer pauses). */
const parkMouse = (page) => page.mouse.move(2, 2);

test("StreamWeaver dashboard, end to end", { timeout: 420_000 }, async (t) => {
  if (!DASHBOARD_URL) {
    t.skip("DASHBOARD_URL is not set: this test needs the whole system running (see frontend/e2e/dashboard.test.mjs)");
    return;
  }
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const shot = async (page, name) => {
    const file = path.join(ARTIFACTS_DIR, `dashboard-${name}.png`);
    await page.screenshot({ path: file });
    t.diagnostic(`screenshot: ${file}`);
  };
  const browser = await launchChromium();
  const pageErrors = [];
  let page;
  let failed = true;
  try {
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
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
      await sleep(3_000); // let the rates settle
      const f = await figures(page);
      t.diagnostic(`over WebSocket: ${describeFigures(f)}`);
      console.log(`events/sec shown (ws): ${TOPICS.map((k) => `${k}=${f.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(f.transport, "ws");
      assert.equal(f.banner, "", "no connection banner while connected");
      for (const topic of TOPICS) assert.ok(f.eps[topic] > 0, `eps-${topic} is ${f.eps[topic]}`);
      // The trades board states its reference and shows the side as B or S.
      const reference = await page.locator('[data-testid="trades-reference"]').textContent();
      assert.match(reference ?? "", /from the open: each symbol.s first trade (since \d\d:\d\d:\d\d|on this page)\./);
      const sides = await page.locator('[data-testid="trade-row"] .side [aria-hidden]').allTextContents();
      assert.ok(sides.every((s) => s === "B" || s === "S"), `sides: ${sides.join(",")}`);
      await shot(page, "1440x900");
    });

    await t.test("the trades board is filled when the page opens", async () => {
      // Does the gateway serve start points? Ask it the way the board does, over a WebSocket.
      const wsUrl = new URL(GATEWAY_URL ?? DASHBOARD_URL.replace(/:\d+$/, ":8080"));
      wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
      wsUrl.pathname = "/ws";
      const servesStartAt = await page.evaluate(
        (url) =>
          new Promise((resolve) => {
            const ws = new WebSocket(url);
            const asked = Date.now();
            const done = (answer) => {
              resolve(answer);
              ws.close();
            };
            ws.onopen = () => ws.send(JSON.stringify({ topics: ["stock_trades"], startAt: { last: "60s" } }));
            ws.onmessage = (m) => {
              const r = JSON.parse(m.data);
              const at = r.event?.producedAt;
              if (at) done(Date.parse(at.replace(/(\.\d{3})\d*Z$/, "$1Z")) < asked - 2_000);
              else if (r.error) done(false);
            };
            setTimeout(() => done(false), 15_000);
          }),
        wsUrl.toString(),
      );
      const fresh = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      try {
        const opened = Date.now();
        await fresh.goto(url.toString(), { waitUntil: "load" });
        await fresh.locator('[data-testid="trade-row"]').first().waitFor({ timeout: 15_000 });
        const filledMs = Date.now() - opened;
        const reference = (await fresh.locator('[data-testid="trades-reference"]').textContent()) ?? "";
        t.diagnostic(`gateway serves startAt: ${servesStartAt}; board filled ${filledMs} ms after opening; "${reference}"`);
        if (servesStartAt) {
          // The open is the first trade of the five minutes asked for: well before the page opened.
          const [, hh, mm, ss] = /since (\d\d):(\d\d):(\d\d)/.exec(reference) ?? [];
          assert.ok(hh, `the reference names a time: ${reference}`);
          const d = new Date(opened);
          const openedSec = d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds();
          const sinceSec = Number(hh) * 3600 + Number(mm) * 60 + Number(ss);
          const before = (openedSec - sinceSec + 86_400) % 86_400;
          assert.ok(before >= 3, `the window starts ${before} s before the page opened`);
          // The header's figures are redrawn once a second.
          await fresh.waitForFunction(
            () => Number(document.querySelector('[data-testid="events-replayed"]')?.getAttribute("data-value") ?? "0") > 0,
            undefined,
            { timeout: 5_000, polling: 200 },
          );
        }
      } finally {
        await fresh.close();
      }
    });

    await t.test("the accessibility tree names the regions and the connection status", async () => {
      const cdp = await page.context().newCDPSession(page);
      const { nodes } = await cdp.send("Accessibility.getFullAXTree");
      await cdp.detach();
      const named = (role) =>
        nodes.filter((n) => n.role?.value === role && !n.ignored).map((n) => n.name?.value ?? "");
      const regions = named("region");
      for (const name of ["Stock trades", "Social feed", "Server logs", "Stock trades board", "Posts", "Log lines"]) {
        assert.ok(regions.includes(name), `no region named "${name}" (regions: ${regions.join(", ")})`);
      }
      const statuses = nodes.filter((n) => n.role?.value === "status" && !n.ignored);
      assert.equal(statuses.length, 1, "one status");
      t.diagnostic(`regions: ${regions.join(", ")}; status: ${JSON.stringify(statuses[0]?.name?.value ?? "")}`);
      assert.ok(named("banner").length >= 1 && named("main").length === 1, "banner and main landmarks");

      // Keyboard focus is visible, the active transport button's included.
      await parkMouse(page);
      await page.locator("body").click({ position: { x: 2, y: 2 } });
      let focused = "";
      for (let i = 0; i < 10 && focused !== "transport-ws"; i++) {
        await page.keyboard.press("Tab");
        focused = await page.evaluate(() => document.activeElement?.getAttribute("data-testid") ?? "");
      }
      assert.equal(focused, "transport-ws", "Tab reaches the active transport button");
      const ring = await page.evaluate(() => {
        const s = getComputedStyle(document.activeElement);
        return { style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor };
      });
      assert.notEqual(ring.style, "none", "the focused transport button has an outline");
      assert.ok(ring.width >= 2, `outline width ${ring.width}`);
      await page.evaluate(() => document.activeElement?.blur());
    });

    await t.test("the search box narrows the log tail, at the server", async () => {
      await parkMouse(page);
      const received = async () => (await figures(page)).totals.server_logs;
      const serverFilter = () => page.locator('[data-testid="panel-server-logs"]').getAttribute("data-server-filter");
      const compiled = async () => {
        if (!GATEWAY_URL) return NaN;
        const text = await (await fetch(`${GATEWAY_URL}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith("gateway_filter_expressions_compiled_total "));
        return Number(line?.split(" ")[1] ?? "NaN");
      };
      const compiledBefore = await compiled();
      // Every log line reaches the page before the search.
      let start = await received();
      await sleep(5_000);
      const unfiltered = (await received()) - start;

      const box = page.locator('[data-testid="search-logs"]');
      try {
        // Only DEBUG lines say "cache lookup": about a tenth of them.
        await box.fill("cache lookup");
        await sleep(1_000);
        const texts = await page.locator('[data-testid="log-row"]').allTextContents();
        assert.ok(
          texts.every((x) => x.toLowerCase().includes("cache lookup")),
          `a line without 'cache lookup': ${texts.find((x) => !x.toLowerCase().includes("cache lookup"))}`,
        );
        // The search went to the gateway as a CEL filter, and the gateway sends only what it keeps.
        await page.waitForFunction(
          () => document.querySelector('[data-testid="panel-server-logs"]')?.getAttribute("data-server-filter")?.includes('"(?i)lookup"'),
          undefined,
          { timeout: 5_000 },
        );
        // Every word, in any of the fields the page searches.
        assert.match(await serverFilter(), /log_entry\.message\.matches\("\(\?i\)cache"\)/);
        await waitForStatus(page, "connected", 15_000);
        if (GATEWAY_URL) assert.ok((await compiled()) > compiledBefore, "the gateway compiled the search's expression");
        await sleep(2_000);
        start = await received();
        await sleep(5_000);
        const filtered = (await received()) - start;
        await page.locator('[data-testid="log-row"]').first().waitFor({ timeout: 30_000 });
        const shown = await page.locator('[data-testid="log-row"]').allTextContents();
        assert.ok(shown.every((x) => x.toLowerCase().includes("cache lookup")), "a line without 'cache lookup'");
        t.diagnostic(`log lines received in 5 s: ${unfiltered} before the search, ${filtered} with it`);
        assert.ok(filtered * 3 < unfiltered, `the gateway still sent ${filtered} lines in 5 s (${unfiltered} before)`);
        assert.equal(
          await page.locator('[data-testid="logs-search-refused"]').count(),
          0,
          "the gateway refused the search",
        );
      } catch (error) {
        // Later tests need the whole tail: the search goes, whatever failed here.
        await box.fill("");
        throw error;
      }

      await box.fill("no line says this");
      await page.locator('[data-testid="log-list"] .empty').waitFor({ timeout: 5_000 });
      await box.fill("");
      await page.locator('[data-testid="log-row"]').first().waitFor({ timeout: 5_000 });
      await page.waitForFunction(
        () => document.querySelector('[data-testid="panel-server-logs"]')?.getAttribute("data-server-filter") === "",
        undefined,
        { timeout: 5_000 },
      );
    });

    await t.test("a click opens the full log line, a post, and a symbol's chart with trade-bars' candles", async () => {
      // The pointer over the list pauses it, so the first row stays the first row.
      await page.locator('[data-testid="log-list"]').hover();
      await page.waitForFunction(() => document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-paused") === "true", undefined, { timeout: 5_000 });
      const row = page.locator('[data-testid="log-row"]').first();
      const seq = await row.getAttribute("data-seq");
      await row.click();
      const dialog = page.locator('[data-testid="log-dialog"]');
      await dialog.locator('[data-testid="log-detail"]').waitFor({ timeout: 5_000 });
      assert.equal(await page.locator('[data-testid="logs-status"]').getAttribute("data-paused"), "true");
      await shot(page, "log-line");
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden", timeout: 5_000 });
      const back = await page.evaluate(() => document.activeElement?.getAttribute("data-seq"));
      assert.equal(back, seq, "focus returns to the line that opened the dialog");

      await page.locator('[data-testid="post-row"]').first().click();
      await page.locator('[data-testid="post-detail"]').waitFor({ timeout: 5_000 });
      await page.keyboard.press("Escape");

      const openedSec = Date.now() / 1000;
      await page.locator('[data-testid^="symbol-"]').first().click();
      const chart = page.locator('[data-testid="chart-dialog"] [data-testid="price-chart"] canvas').first();
      await chart.waitFor({ timeout: 10_000 });

      // trade-bars runs in the stack: the chart's candles are filled from before it opened (the
      // start point), then grow live, and are drawn in the up and down colours.
      const candles = () =>
        page.evaluate(() => {
          const figure = document.querySelector('[data-testid="chart-dialog"] .price-chart');
          return {
            count: Number(figure?.getAttribute("data-candles") ?? "0"),
            first: Number(figure?.getAttribute("data-first-candle") ?? "NaN"),
            last: Number(figure?.getAttribute("data-last-candle") ?? "NaN"),
            caption: figure?.querySelector("figcaption")?.textContent ?? "",
            status: document.querySelector('[data-testid="candles-status"]')?.getAttribute("data-status") ?? "",
          };
        });
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="chart-dialog"] .price-chart')?.getAttribute("data-candles") ?? "0") >= 3,
        undefined,
        { timeout: 20_000, polling: 200 },
      );
      const atOpen = await candles();
      assert.ok(
        atOpen.first < openedSec - 2,
        `the candles start before the chart opened (${atOpen.first} vs ${openedSec}): filled from the start point`,
      );
      assert.match(atOpen.caption, /\d+ from trade-bars \(green up, red down\)/);
      assert.equal(atOpen.status, "connected");
      await page.waitForFunction(
        (last) => Number(document.querySelector('[data-testid="chart-dialog"] .price-chart')?.getAttribute("data-last-candle") ?? "0") > last,
        atOpen.last,
        { timeout: 15_000, polling: 200 },
      );
      const drawn = await page.evaluate(() => {
        const hex = (name) => {
          const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim().replace("#", "");
          return [0, 2, 4].map((i) => parseInt(v.slice(i, i + 2), 16));
        };
        const colours = { up: hex("--up"), down: hex("--down") };
        const counts = { up: 0, down: 0 };
        // The plot is the largest canvas; the axes are canvases of their own.
        const canvases = [...document.querySelectorAll('[data-testid="chart-dialog"] [data-testid="price-chart"] canvas')];
        const plot = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
        const data = plot?.getContext("2d")?.getImageData(0, 0, plot.width, plot.height).data ?? [];
        for (let i = 0; i < data.length; i += 4) {
          for (const [name, [r, g, b]] of Object.entries(colours)) {
            if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 24) counts[name]++;
          }
        }
        return counts;
      });
      t.diagnostic(`candles: ${atOpen.count} at open (from ${atOpen.first}), pixels drawn ${JSON.stringify(drawn)}`);
      assert.ok(drawn.up + drawn.down > 50, `candles are drawn: ${JSON.stringify(drawn)}`);
      await shot(page, "chart");
      await page.keyboard.press("Escape");
      await page.locator('[data-testid="chart-dialog"]').waitFor({ state: "hidden", timeout: 5_000 });
    });

    await t.test("pause holds the rows still while events keep arriving, and resume catches up", async () => {
      await parkMouse(page);
      await page.evaluate(() => document.activeElement?.blur());
      const status = page.locator('[data-testid="logs-status"]');
      await page.waitForFunction(() => document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-paused") === "false", undefined, { timeout: 5_000 });
      await page.locator('[data-testid="pause-logs"]').click();
      await parkMouse(page);
      assert.equal(await status.getAttribute("data-paused"), "true");
      const held = await logSeqs(page);
      const before = await figures(page);
      await waitForNewEvents(page, before.totals, ["server_logs"], 15_000);
      await page.waitForFunction(
        () => Number(document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-new-count") ?? "0") >= 10,
        undefined,
        { timeout: 15_000, polling: 200 },
      );
      await sleep(1_000);
      assert.deepEqual(await logSeqs(page), held, "the rows moved while paused");
      const waiting = Number(await status.getAttribute("data-new-count"));
      t.diagnostic(`paused: ${held.length} rows held, ${waiting} new lines waiting`);
      assert.match((await status.textContent()) ?? "", /Paused.*\d+\+? new — resume/);
      await shot(page, "paused");

      await page.locator('[data-testid="logs-status-resume"]').click();
      await parkMouse(page);
      await page.waitForFunction(() => document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-paused") === "false", undefined, { timeout: 5_000 });
      const after = await logSeqs(page);
      assert.ok(after[0] > Math.max(...held) + waiting - 1, `resumed at ${after[0]}, held up to ${Math.max(...held)}, ${waiting} waiting`);

      // The pointer over a list pauses it too, and leaving it resumes.
      await page.locator('[data-testid="log-list"]').hover();
      await page.waitForFunction(() => document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-paused") === "true", undefined, { timeout: 5_000 });
      assert.match((await status.textContent()) ?? "", /pointer over list/);
      await parkMouse(page);
      await page.waitForFunction(() => document.querySelector('[data-testid="logs-status"]')?.getAttribute("data-paused") === "false", undefined, { timeout: 5_000 });
    });

    await t.test("no panel overflows at 1280×720, nor the page; usable at 390×844", async () => {
      await page.setViewportSize({ width: 1280, height: 720 });
      await sleep(1_500);
      let o = await overflow(page);
      t.diagnostic(`1280×720: ${JSON.stringify(o)}`);
      assert.deepEqual(o.wide, [], "something is wider than its box at 1280×720");
      assert.ok(o.pageWidth <= 1280 && o.pageHeight <= 720, `the page itself scrolls: ${o.pageWidth}×${o.pageHeight}`);
      await shot(page, "1280x720");

      await page.setViewportSize({ width: 390, height: 844 });
      await sleep(1_500);
      o = await overflow(page);
      t.diagnostic(`390×844: ${JSON.stringify(o)}`);
      assert.deepEqual(o.wide, [], "something is wider than its box at 390×844");
      assert.ok(o.pageWidth <= 390 && o.pageHeight <= 844, `the page itself scrolls: ${o.pageWidth}×${o.pageHeight}`);
      await shot(page, "390x844");
      await page.locator('[data-testid="show-logs"]').click();
      await page.locator('[data-testid="log-row"]').first().waitFor({ timeout: 5_000 });
      assert.ok(await page.locator('[data-testid="panel-server-logs"]').isVisible());
      assert.ok(!(await page.locator('[data-testid="panel-stock-trades"]').isVisible()));
      await shot(page, "390x844-logs");
      await page.setViewportSize({ width: 1440, height: 900 });
    });

    await t.test("switching to grpc-web keeps the panels live, without reload", async () => {
      const before = await figures(page);
      await page.locator('[data-testid="transport-grpc-web"]').click();
      await parkMouse(page);
      await page.waitForFunction(
        () => document.querySelector('[data-testid="connection-status"]')?.getAttribute("data-transport") === "grpc-web",
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

    await t.test("switching to SSE keeps the panels live, without reload", async () => {
      const before = await figures(page);
      await page.locator('[data-testid="transport-sse"]').click();
      await parkMouse(page);
      await page.waitForFunction(
        () => document.querySelector('[data-testid="connection-status"]')?.getAttribute("data-transport") === "sse",
        undefined,
        { timeout: 5_000 },
      );
      await waitForStatus(page, "connected", 15_000);
      await waitForNewEvents(page, before.totals, TOPICS, 30_000);
      await sleep(2_000);
      const f = await figures(page);
      t.diagnostic(`over SSE: ${describeFigures(f)}`);
      console.log(`events/sec shown (sse): ${TOPICS.map((k) => `${k}=${f.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(f.transport, "sse");
      assert.ok(new URL(page.url()).searchParams.get("transport") === "sse", "URL remembers the transport");
      for (const topic of TOPICS) assert.ok(f.eps[topic] > 0, `eps-${topic} is ${f.eps[topic]} over SSE`);
      const rows = await page.locator('[data-testid="log-row"]').count();
      assert.ok(rows > 0, "log lines shown over SSE");
      await shot(page, "sse");
    });

    await t.test("the service and level filters reach the server", async () => {
      const service = page.locator('[data-testid="service-filter"]');
      await service.fill("payment-service");
      await service.press("Enter");
      await sleep(4_000);
      let filteredBefore = (await figures(page)).clientFiltered;
      await sleep(4_000);
      let services = await page.locator('[data-testid="log-row"] .service').allTextContents();
      assert.ok(services.length > 0, "payment-service lines arrive");
      assert.deepEqual([...new Set(services)], ["payment-service"]);
      assert.equal((await figures(page)).clientFiltered, filteredBefore, "the server kept sending other services");
      await service.fill("");
      await service.press("Enter");

      for (const level of ["DEBUG", "INFO", "WARN"]) {
        const box = page.locator(`[data-testid="level-filter-${level}"]`);
        if (await box.isChecked()) await box.uncheck();
      }
      await parkMouse(page);
      assert.ok(await page.locator('[data-testid="level-filter-ERROR"]').isChecked());
      // Lines already in flight may still arrive (and are dropped by the page); after a few
      // seconds the server must send only ERROR lines.
      await sleep(4_000);
      await page
        .locator('[data-testid="log-row"]')
        .first()
        .waitFor({ timeout: 30_000 })
        .catch((e) => assert.fail(`no ERROR log lines within 30 s: ${e.message}`));
      filteredBefore = (await figures(page)).clientFiltered;
      await sleep(4_000);
      const levels = await page.locator('[data-testid="log-row"]').evaluateAll((rows) =>
        rows.map((r) => r.getAttribute("data-level")),
      );
      assert.ok(levels.length > 0);
      assert.deepEqual([...new Set(levels)], ["ERROR"], `visible levels: ${levels.join(",")}`);
      const f = await figures(page);
      t.diagnostic(`ERROR only: ${levels.length} rows; lines the server sent that the filters exclude: ${f.clientFiltered}`);
      assert.equal(
        f.clientFiltered,
        filteredBefore,
        "the server kept sending non-ERROR lines after the filter change (SubscribeRequest.logLevels ignored?)",
      );
      for (const level of ["DEBUG", "INFO", "WARN"]) await page.locator(`[data-testid="level-filter-${level}"]`).check();
      await parkMouse(page);
    });

    await t.test("a stopped gateway shows at once; a page opened meanwhile says it cannot connect; both recover", async () => {
      run("GATEWAY_STOP_CMD", GATEWAY_STOP_CMD);
      const stoppedAt = Date.now();
      await page.locator('[data-testid="connection-banner"]').waitFor({ timeout: 5_000 });
      await waitForStatus(page, "disconnected", 5_000);
      t.diagnostic(`banner ${Date.now() - stoppedAt} ms after the gateway had stopped`);
      await page.waitForFunction(
        () => [...document.querySelectorAll(".panel")].every((p) => p.getAttribute("data-stale") === "true"),
        undefined,
        { timeout: 5_000 },
      );
      await sleep(2_500);
      const f = await figures(page);
      t.diagnostic(`after stop: ${describeFigures(f)}; banner: ${f.banner}`);
      assert.match(f.banner, /disconnected — (retrying in \d+ s|trying again now) · last data \d+ s ago/);
      for (const topic of TOPICS) assert.equal(f.shown[topic], "–", `${topic} rate shown while disconnected`);
      assert.equal(f.latencyP50, "–");
      await shot(page, "disconnected");

      const fresh = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      try {
        await fresh.goto(url.toString(), { waitUntil: "load" });
        await fresh.waitForFunction(
          () => document.querySelector('[data-testid="connection-banner"]')?.getAttribute("data-state") === "unreachable",
          undefined,
          { timeout: 10_000 },
        );
        const text = await fresh.locator('[data-testid="connection-banner"]').textContent();
        assert.match(text ?? "", /^Cannot connect to the gateway at /);
        await shot(fresh, "cannot-connect");
      } finally {
        await fresh.close();
      }

      run("GATEWAY_START_CMD", GATEWAY_START_CMD);
      await waitForStatus(page, "connected", 60_000);
      await page.locator('[data-testid="connection-banner"]').waitFor({ state: "detached", timeout: 10_000 });
      const before = await figures(page);
      await waitForNewEvents(page, before.totals, ["stock_trades", "social_feed"], 60_000);
      await page.waitForFunction(
        (seq) => (document.querySelector('[data-testid="post-row"]')?.getAttribute("data-seq") ?? "") !== seq,
        before.firstPostSeq,
        { timeout: 30_000, polling: 200 },
      );
      await sleep(2_000);
      const after = await figures(page);
      t.diagnostic(`after restart: ${describeFigures(after)}`);
      console.log(`events/sec shown (after restart): ${TOPICS.map((k) => `${k}=${after.eps[k].toFixed(1)}`).join(" ")}`);
      assert.equal(after.status, "connected");
      assert.ok(
        await page.evaluate(() => [...document.querySelectorAll(".panel")].every((p) => p.getAttribute("data-stale") === "false")),
        "panels are bright again",
      );
    });

    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
    failed = false;
  } finally {
    if (page && failed) {
      await page
        .screenshot({ path: path.join(ARTIFACTS_DIR, "dashboard-failure.png"), fullPage: true })
        .catch(() => undefined);
    }
    await browser.close();
  }
});
