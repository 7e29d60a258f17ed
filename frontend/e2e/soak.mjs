// Soak test of the live dashboard against a running StreamWeaver: opens the page in headless
// Chromium for SOAK_SECONDS and reports, every SOAK_INTERVAL seconds, how smoothly it renders
// (requestAnimationFrame callbacks per second, longest gap between two), its JS heap and DOM size,
// and the figures it shows (events/s per topic, latency p50/p95, gaps), and how much CPU the
// page's main thread used (CDP ThreadTime: unlike frame rates and task lengths, it does not
// depend on how busy the rest of the machine is). Deliberately not a
// *.test.mjs file: `node --test frontend/e2e/` does not run it. scripts/dashboard-soak.sh starts
// the stack around it.
//
// Environment:
//   DASHBOARD_URL     the dashboard, e.g. http://127.0.0.1:23100 (required)
//   GATEWAY_URL       the gateway, passed as ?gateway= (optional)
//   SOAK_SECONDS      how long to measure (default 600)
//   SOAK_INTERVAL     seconds between report lines (default 30)
//   SOAK_WARMUP       seconds after the first event before the baseline heap is taken (default 10)
//   SOAK_TRANSPORT    ws | grpc-web (default ws)
//   SOAK_MIN_FPS      fail when the average fps is below this (default 30)
//   SOAK_MAX_LONG_TASK_MS  fail when a main-thread task took longer than this (default 100): its
//                     CPU time, from a trace of the whole run (what the page itself spends, which
//                     other processes on a shared machine do not stretch); its wall-clock length
//                     is reported beside it, and is what is checked with SOAK_TRACE=0
//   SOAK_TRACE        0: no trace (default 1)
//   SOAK_MAX_HEAP_GROWTH  fail when the heap after GC grew by more than this fraction (default 0.5)
//   RUN_DIR           if set, the CPU use of the processes with pid files there is reported too
//   CHROMIUM_PATH     browser binary (default: /usr/bin/chromium)
//
// Exit status: 0 when the page kept up, 1 when the heap grew too much, the average fps was too
// low, or no event arrived; 2 when the run itself failed.
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";

const env = process.env;
const DASHBOARD_URL = env.DASHBOARD_URL;
const GATEWAY_URL = env.GATEWAY_URL;
const SECONDS = Number(env.SOAK_SECONDS ?? 600);
const INTERVAL = Number(env.SOAK_INTERVAL ?? 30);
const WARMUP = Number(env.SOAK_WARMUP ?? 10);
const TRANSPORT = env.SOAK_TRANSPORT ?? "ws";
const MIN_FPS = Number(env.SOAK_MIN_FPS ?? 30);
const MAX_HEAP_GROWTH = Number(env.SOAK_MAX_HEAP_GROWTH ?? 0.5);
const MAX_LONG_TASK_MS = Number(env.SOAK_MAX_LONG_TASK_MS ?? 100);
const TRACE = env.SOAK_TRACE !== "0";
const RUN_DIR = env.RUN_DIR;
const TOPICS = ["stock_trades", "social_feed", "server_logs"];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)}MB`;
const log = (line) => console.log(`[soak] ${line}`);

// ---- CPU accounting from /proc (Linux only; silently empty elsewhere) ----------------------

const CLK_TCK = 100;

function hostCpuTicks() {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { total: f.reduce((a, b) => a + b, 0), idle };
  } catch {
    return null;
  }
}

function procTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // fields after the comm: state(0) ppid(1) ... utime(11) stime(12)
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

/** pid -> name for the stack's processes (RUN_DIR/*.pid) and the browser's processes (every
 * descendant of this node process: playwright launches Chromium as its child). */
function watchedPids() {
  const root = process.pid;
  const named = new Map();
  if (RUN_DIR) {
    try {
      for (const f of readdirSync(RUN_DIR)) {
        if (!f.endsWith(".pid")) continue;
        const pid = Number(readFileSync(path.join(RUN_DIR, f), "utf8").trim());
        if (pid) named.set(pid, f.slice(0, -4));
      }
    } catch {}
  }
  {
    const parent = new Map();
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      const p = procTicks(d);
      if (p) parent.set(Number(d), p.ppid);
    }
    for (const pid of parent.keys()) {
      if (pid === root) continue;
      for (let p = parent.get(pid), depth = 0; p && depth < 10; p = parent.get(p), depth++) {
        if (p === root) {
          named.set(pid, "chromium");
          break;
        }
      }
    }
  }
  return named;
}

/** Snapshot of CPU ticks per name (summing processes that share one, e.g. chromium's). */
function cpuSnapshot() {
  const per = {};
  for (const [pid, name] of watchedPids()) {
    const p = procTicks(pid);
    if (p) per[name] = (per[name] ?? 0) + p.ticks;
  }
  return { at: Date.now(), host: hostCpuTicks(), per };
}

/** "host 87% | broker 35% chromium 60% ..." between two snapshots (% of one core per process). */
function cpuDelta(a, b) {
  const secs = (b.at - a.at) / 1000;
  const parts = [];
  if (a.host && b.host) {
    const total = b.host.total - a.host.total;
    const busy = total - (b.host.idle - a.host.idle);
    if (total > 0) parts.push(`host ${((busy / total) * 100).toFixed(0)}%`);
  }
  const names = Object.keys(b.per).sort();
  const procs = names
    .filter((n) => n in a.per)
    .map((n) => `${n} ${(((b.per[n] - a.per[n]) / CLK_TCK / secs) * 100).toFixed(0)}%`);
  return [parts.join(""), procs.join(" ")].filter(Boolean).join(" | ");
}

// ---- the page -------------------------------------------------------------------------------

/** Installed before the app: counts animation frames and long tasks. */
function frameProbe() {
  const s = { frames: 0, maxGap: 0, last: 0, longTasks: 0, longTaskMs: 0, longestTask: 0 };
  window.__soak = s;
  const tick = (t) => {
    if (s.last) s.maxGap = Math.max(s.maxGap, t - s.last);
    s.last = t;
    s.frames++;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        s.longTasks++;
        s.longTaskMs += e.duration;
        s.longestTask = Math.max(s.longestTask, e.duration);
      }
    }).observe({ type: "longtask", buffered: false });
  } catch {}
}

/** Reads and resets the frame counters, and reads the header figures. */
async function sample(page) {
  return page.evaluate((topics) => {
    const s = window.__soak;
    const out = {
      at: performance.now(),
      frames: s.frames,
      maxGap: s.maxGap,
      longTasks: s.longTasks,
      longTaskMs: s.longTaskMs,
      longestTask: s.longestTask,
    };
    s.frames = 0;
    s.maxGap = 0;
    s.longTasks = 0;
    s.longTaskMs = 0;
    s.longestTask = 0;
    const q = (id) => document.querySelector(`[data-testid="${id}"]`);
    out.eps = {};
    out.totals = {};
    for (const t of topics) {
      out.eps[t] = Number(q(`eps-${t}`)?.getAttribute("data-value") ?? "NaN");
      out.totals[t] = Number(q(`eps-${t}`)?.getAttribute("data-total") ?? "NaN");
    }
    out.p50 = q("latency-p50")?.textContent ?? "";
    out.p95 = q("latency-p95")?.textContent ?? "";
    out.gaps = q("gap-count")?.getAttribute("data-value") ?? "";
    out.errors = q("stream-errors")?.getAttribute("data-value") ?? "";
    out.total = topics.reduce((sum, t) => sum + Number(q(`eps-${t}`)?.getAttribute("data-total") ?? "NaN"), 0);
    out.live = Number(q("events-total")?.getAttribute("data-value") ?? "NaN");
    out.replayed = Number(q("events-replayed")?.getAttribute("data-value") ?? "NaN");
    const status = q("connection-status");
    out.status = status?.getAttribute("data-status") ?? status?.textContent ?? "";
    out.transport = status?.getAttribute("data-transport") ?? q("transport-label")?.textContent ?? "";
    out.domNodes = document.getElementsByTagName("*").length;
    out.rows = {
      trades: document.querySelectorAll('[data-testid="trade-row"]').length,
      posts: document.querySelectorAll('[data-testid="post-row"]').length,
      logs: document.querySelectorAll('[data-testid="log-row"]').length,
    };
    return out;
  }, TOPICS);
}

const TRACE_FILE = path.join(tmpdir(), `soak-trace-${process.pid}.json`);

/** Starts a trace of the page's tasks (RunTask events are in the timeline category). */
async function startTaskTrace(browser, page) {
  await browser.startTracing(page, { path: TRACE_FILE, categories: ["disabled-by-default-devtools.timeline"] });
}

/**
 * Stops the trace and sums up the main thread's tasks by CPU time (a task's `tdur`): a task's
 * wall-clock length includes the time the OS gave the CPU to other processes, its CPU time
 * does not.
 */
async function stopTaskTrace(browser, seconds) {
  await browser.stopTracing();
  const file = TRACE_FILE;
  try {
    const events = JSON.parse(readFileSync(file, "utf8")).traceEvents ?? [];
    const main = new Set(
      events.filter((e) => e.name === "thread_name" && e.args?.name === "CrRendererMain").map((e) => `${e.pid}:${e.tid}`),
    );
    const tasks = events.filter((e) => e.name === "RunTask" && e.ph === "X" && main.has(`${e.pid}:${e.tid}`));
    const cpu = tasks.map((e) => (e.tdur ?? 0) / 1000);
    const wall = tasks.map((e) => (e.dur ?? 0) / 1000);
    return {
      tasks: tasks.length,
      busyCpu: cpu.reduce((a, b) => a + b, 0) / (seconds * 1000),
      longestCpu: Math.max(0, ...cpu),
      longestWall: Math.max(0, ...wall),
      over50Cpu: cpu.filter((ms) => ms > 50).length,
      over50Wall: wall.filter((ms) => ms > 50).length,
    };
  } finally {
    rmSync(file, { force: true });
  }
}

async function metrics(cdp) {
  const { metrics } = await cdp.send("Performance.getMetrics");
  return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
}

async function heapAfterGc(cdp) {
  await cdp.send("HeapProfiler.collectGarbage");
  await sleep(500);
  await cdp.send("HeapProfiler.collectGarbage");
  return (await metrics(cdp)).JSHeapUsedSize;
}

async function main() {
  if (!DASHBOARD_URL) {
    console.error("DASHBOARD_URL is not set (scripts/dashboard-soak.sh starts the stack and sets it)");
    return 2;
  }
  const url = new URL(DASHBOARD_URL);
  url.searchParams.set("transport", TRANSPORT);
  if (GATEWAY_URL) url.searchParams.set("gateway", GATEWAY_URL);

  const browser = await launchChromium(["--enable-precise-memory-info"]);
  const pageErrors = [];
  const consoleErrors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") consoleErrors.push(msg.text());
    });
    await page.addInitScript(frameProbe);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");

    log(`opening ${url} for ${SECONDS} s (transport ${TRANSPORT}, a line every ${INTERVAL} s)`);
    await page.goto(url.toString(), { waitUntil: "load" });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('[data-testid^="eps-"]')].some((e) => Number(e.getAttribute("data-total") ?? "0") > 0),
      undefined,
      { timeout: 60_000, polling: 250 },
    );
    log(`first events arrived; warming up ${WARMUP} s`);
    await sleep(WARMUP * 1000);

    const heapStart = await heapAfterGc(cdp);
    let prev = await sample(page); // resets the frame counters
    let prevCpu = cpuSnapshot();
    const startTotal = prev.total;
    const prev0 = prev;
    if (TRACE) await startTaskTrace(browser, page);
    const t0 = Date.now();
    log(`baseline: heap after GC ${mb(heapStart)}, DOM ${prev.domNodes} nodes, events ${prev.total}`);
    log("columns: elapsed fps(maxgap) longtasks heap dom | eps per topic | latency | gaps/errors | status | cpu");

    const fpsSeen = [];
    let longestTask = 0;
    const epsSeen = Object.fromEntries(TOPICS.map((t) => [t, []]));
    const rcvSeen = Object.fromEntries(TOPICS.map((t) => [t, []]));
    let last = prev;
    let lastMetrics = await metrics(cdp);
    const firstMetrics = lastMetrics;
    const mainCpu = [];
    while (Date.now() - t0 < SECONDS * 1000) {
      const remaining = SECONDS * 1000 - (Date.now() - t0);
      await sleep(Math.min(INTERVAL * 1000, remaining));
      const s = await sample(page);
      const m = await metrics(cdp);
      const cpu = cpuSnapshot();
      const secs = (s.at - prev.at) / 1000;
      const fps = s.frames / secs;
      const busy = (m.ThreadTime - lastMetrics.ThreadTime) / secs;
      const layout = (m.LayoutDuration - lastMetrics.LayoutDuration) / secs;
      const script = (m.ScriptDuration - lastMetrics.ScriptDuration) / secs;
      mainCpu.push(busy);
      fpsSeen.push({ fps, secs });
      longestTask = Math.max(longestTask, s.longestTask);
      // Events the page actually received per topic (totals), beside the rate it shows.
      const rcv = {};
      for (const t of TOPICS) {
        rcv[t] = (s.totals[t] - prev.totals[t]) / secs;
        epsSeen[t].push(s.eps[t]);
        rcvSeen[t].push(rcv[t]);
      }
      const elapsed = ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
      const eps = TOPICS.map((t) => `${t}=${s.eps[t].toFixed(0)}(rcv ${rcv[t].toFixed(0)})`).join(" ");
      log(
        `t=${elapsed}s fps=${fps.toFixed(1)} maxgap=${s.maxGap.toFixed(0)}ms ` +
          `longtasks=${s.longTasks}/${(s.longTaskMs / 1000).toFixed(1)}s longest=${s.longestTask.toFixed(0)}ms ` +
          `main-thread cpu=${(busy * 100).toFixed(0)}% (wall: script ${(script * 100).toFixed(0)}% layout ${(layout * 100).toFixed(0)}%) ` +
          `heap=${mb(m.JSHeapUsedSize)} dom=${s.domNodes}(cdp ${m.Nodes}) listeners=${m.JSEventListeners} | ` +
          `${eps} | p50=${s.p50} p95=${s.p95} | gaps=${s.gaps} errors=${s.errors} | ` +
          `${s.transport}/${s.status} | ${cpuDelta(prevCpu, cpu)}`,
      );
      prev = s;
      prevCpu = cpu;
      last = s;
      lastMetrics = m;
    }

    const traced = TRACE ? await stopTaskTrace(browser, (Date.now() - t0) / 1000) : undefined;
    const heapEnd = await heapAfterGc(cdp);
    const fpsValues = fpsSeen.map((f) => f.fps);
    const totalSecs = fpsSeen.reduce((a, f) => a + f.secs, 0);
    const avgFps = fpsSeen.reduce((a, f) => a + f.fps * f.secs, 0) / (totalSecs || 1);
    const minFps = Math.min(...fpsValues);
    const growth = (heapEnd - heapStart) / heapStart;
    const avg = (xs) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
    const received = last.total - startTotal;

    log("---- summary ----");
    log(`duration ${totalSecs.toFixed(0)} s, transport ${TRANSPORT}, ${fpsSeen.length} samples`);
    log(`fps min ${minFps.toFixed(1)} avg ${avgFps.toFixed(1)} (threshold ${MIN_FPS})`);
    // The page's own cost: CPU time when traced, else wall-clock time.
    const longestChecked = traced ? traced.longestCpu : longestTask;
    log(
      `longest main-thread task: ${longestTask.toFixed(0)} ms wall clock` +
        (traced ? `, ${traced.longestCpu.toFixed(1)} ms of CPU` : "") +
        ` (threshold ${MAX_LONG_TASK_MS} ms ${traced ? "of CPU" : "wall clock"})`,
    );
    if (traced) {
      log(
        `traced the run: ${traced.tasks} tasks, main thread busy ${(traced.busyCpu * 100).toFixed(0)}% (CPU); ` +
          `longest task ${traced.longestCpu.toFixed(1)} ms of CPU (${traced.longestWall.toFixed(0)} ms wall); ` +
          `tasks over 50 ms: ${traced.over50Cpu} by CPU, ${traced.over50Wall} by wall clock`,
      );
    }
    const span = (lastMetrics.Timestamp - firstMetrics.Timestamp) || 1;
    log(
      `main-thread cpu: avg ${(((lastMetrics.ThreadTime - firstMetrics.ThreadTime) / span) * 100).toFixed(0)}% of a core ` +
        `(max interval ${(Math.max(...mainCpu) * 100).toFixed(0)}%); script ran ` +
        `${(((lastMetrics.ScriptDuration - firstMetrics.ScriptDuration) / span) * 100).toFixed(0)}% and layout ` +
        `${(((lastMetrics.LayoutDuration - firstMetrics.LayoutDuration) / span) * 100).toFixed(0)}% of the wall time`,
    );
    log(
      `heap after GC: start ${mb(heapStart)} end ${mb(heapEnd)} growth ${(growth * 100).toFixed(1)}% ` +
        `(threshold ${(MAX_HEAP_GROWTH * 100).toFixed(0)}%)`,
    );
    log(`DOM nodes at end ${last.domNodes} (cdp ${lastMetrics?.Nodes}); rows ${JSON.stringify(last.rows)}`);
    log(
      `events/s shown (avg): ${TOPICS.map((t) => `${t}=${avg(epsSeen[t]).toFixed(0)}`).join(" ")}; ` +
        `received (avg): ${TOPICS.map((t) => `${t}=${avg(rcvSeen[t]).toFixed(0)}`).join(" ")}`,
    );
    log(
      `events received during the run ${received} (live ${last.live - prev0.live}, replayed ${last.replayed - prev0.replayed}); ` +
        `final latency p50=${last.p50} p95=${last.p95}; gaps=${last.gaps} errors=${last.errors}`,
    );
    log(`page errors ${pageErrors.length}, console errors ${consoleErrors.length}`);
    for (const e of [...pageErrors, ...consoleErrors].slice(0, 10)) log(`  ${e}`);

    const failures = [];
    if (growth > MAX_HEAP_GROWTH) failures.push(`heap grew ${(growth * 100).toFixed(1)}%`);
    if (avgFps < MIN_FPS) failures.push(`average fps ${avgFps.toFixed(1)} < ${MIN_FPS}`);
    if (longestChecked > MAX_LONG_TASK_MS) {
      failures.push(`a main-thread task took ${longestChecked.toFixed(0)} ms > ${MAX_LONG_TASK_MS} ms`);
    }
    if (!(received > 0)) failures.push("no events arrived during the run");
    if (failures.length) {
      log(`FAIL: ${failures.join("; ")}`);
      return 1;
    }
    log("PASS");
    return 0;
  } finally {
    await browser.close();
    rmSync(TRACE_FILE, { force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[soak] run failed: ${err?.stack ?? err}`);
    process.exit(2);
  },
);
