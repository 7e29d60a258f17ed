//! The report a benchmark run writes: `results.json` (every figure), `report.md` (the tables,
//! issue 7's targets met or not) and the SVG charts beside it.

use std::{fmt::Write as _, path::Path};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    design::DesignFigures,
    fanout::{FanoutFigures, MemoryFigures, Subject},
    pipeline::{FlatOut, PipelineFigures},
    plots::{Panel, Scale, Series, draw, human},
};

/// Subscribers at which issue 7's fan-out targets are set.
const TARGET_SUBSCRIBERS: usize = 1_000;
/// The rate at which 1,000 subscribers must receive everything.
const TARGET_RATE: f64 = 400.0;
/// Least deliveries per second at 1,000 WebSocket subscribers.
const TARGET_DELIVERIES: f64 = 250_000.0;
/// Least share of the bare baseline's deliveries per second.
const TARGET_SHARE_OF_BARE: f64 = 0.5;
/// Most memory per idle subscriber.
const TARGET_IDLE_BYTES: f64 = 10.0 * 1024.0;
/// Most p99 at 1,000 subscribers, as a multiple of p99 at one.
const TARGET_P99_GROWTH: f64 = 2.0;

/// How the run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// A name for the run, e.g. `before`.
    pub label: String,
    /// When it started (UTC).
    pub started: String,
    /// The commit of the benchmark's checkout (`+dirty` with changes).
    pub commit: String,
    /// The gateway binary measured.
    pub gateway: String,
    /// Cores on the machine.
    pub cores: usize,
    /// Load averages (1, 5, 15 min) before the run.
    pub load_before: [f64; 3],
    /// Load averages after it.
    pub load_after: [f64; 3],
    /// Minutes the run took.
    pub minutes: f64,
    /// Least warm-up per fan-out run, seconds.
    pub warm_up_seconds: f64,
    /// Measured stretch per fan-out run, seconds of publishing.
    pub measure_seconds: f64,
    /// gRPC streams per HTTP/2 connection.
    pub streams_per_connection: usize,
    /// The nice value the benchmark ran at, if it was set.
    #[serde(default)]
    pub nice: Option<i32>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// How the run was made.
    pub info: RunInfo,
    /// StreamWeaver beside the original design (part `design`).
    pub design: Option<DesignFigures>,
    /// The fan-out runs (part `fanout`).
    pub fanout: Vec<FanoutFigures>,
    /// Memory per idle subscriber (part `memory`).
    pub memory: Vec<MemoryFigures>,
    /// End-to-end latency beside bare Kafka (part `pipeline`).
    pub pipeline: Vec<PipelineFigures>,
    /// The pipeline flat out (part `pipeline`).
    pub flat_out: Option<FlatOut>,
    /// CPU per event of filters and client decoding (part `costs`).
    #[serde(default)]
    pub costs: Option<crate::costs::CostFigures>,
    /// Parts that failed, and why.
    pub errors: Vec<String>,
}

/// A target of issue 7 and whether this run met it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What the target says.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured in this run.
    pub met: Option<bool>,
}

impl Verdict {
    fn not_measured(target: String) -> Self {
        Self {
            target,
            measured: "not measured".into(),
            met: None,
        }
    }
}

impl Results {
    fn fanout(&self, subject: Subject, subscribers: usize, rate: f64) -> Option<&FanoutFigures> {
        self.fanout.iter().find(|f| {
            f.subject == subject
                && f.subscribers == subscribers
                && f.rate == rate
                && f.error.is_none()
        })
    }

    fn rates(&self) -> Vec<f64> {
        let mut rates: Vec<f64> = self.fanout.iter().map(|f| f.rate).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        rates
    }

    fn subscriber_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.fanout.iter().map(|f| f.subscribers).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    fn subjects(&self) -> Vec<Subject> {
        let mut subjects = Vec::new();
        for figures in &self.fanout {
            if !subjects.contains(&figures.subject) {
                subjects.push(figures.subject);
            }
        }
        subjects
    }

    /// Issue 7's targets, each met, missed or not measured.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let top_rate = self.rates().last().copied();
        for subject in [Subject::WsBatch, Subject::Ws] {
            let target = format!(
                "{}: at {} subscribers, ≥ {TARGET_SHARE_OF_BARE}× the deliveries/s of the {} and ≥ {} deliveries/s",
                subject.label(),
                thousands(TARGET_SUBSCRIBERS as f64),
                subject.baseline().label(),
                thousands(TARGET_DELIVERIES)
            );
            let pair = top_rate.and_then(|rate| {
                Some((
                    rate,
                    self.fanout(subject, TARGET_SUBSCRIBERS, rate)?,
                    self.fanout(subject.baseline(), TARGET_SUBSCRIBERS, rate)?,
                ))
            });
            verdicts.push(match pair {
                Some((rate, ours, bare)) => {
                    let share = ours.deliveries_per_second / bare.deliveries_per_second.max(1.0);
                    Verdict {
                        target,
                        measured: format!(
                            "at {} events/s: {} vs {} deliveries/s = {share:.2}×",
                            thousands(rate),
                            thousands(ours.deliveries_per_second),
                            thousands(bare.deliveries_per_second)
                        ),
                        met: Some(
                            share >= TARGET_SHARE_OF_BARE
                                && ours.deliveries_per_second >= TARGET_DELIVERIES,
                        ),
                    }
                }
                None => Verdict::not_measured(target),
            });
        }
        for subject in [Subject::WsBatch, Subject::Ws, Subject::Grpc] {
            let target = format!(
                "{}: {} subscribers at {TARGET_RATE} events/s each receive everything, with no gap",
                subject.label(),
                thousands(TARGET_SUBSCRIBERS as f64)
            );
            verdicts.push(match self.fanout(subject, TARGET_SUBSCRIBERS, TARGET_RATE) {
                Some(figures) => Verdict {
                    target,
                    measured: format!(
                        "{} of {} delivered, {} missing, {} gap notices, {} out of order, {} skipped unannounced",
                        thousands(figures.client.deliveries as f64),
                        thousands(figures.client.expected as f64),
                        thousands(figures.client.missing as f64),
                        figures.client.gaps,
                        figures.client.out_of_order,
                        figures.client.unannounced_skips
                    ),
                    met: Some(figures.everything_delivered()),
                },
                None => Verdict::not_measured(target),
            });
        }
        for subject in [Subject::Ws, Subject::Grpc] {
            let transport = if subject == Subject::Grpc {
                "gRPC streams"
            } else {
                "WebSocket subscribers"
            };
            let target = format!("idle {transport}: ≤ 10 KiB of gateway memory each, over 10,000");
            let figures = self
                .memory
                .iter()
                .find(|m| m.subject == subject && m.error.is_none());
            verdicts.push(match figures {
                Some(memory) => Verdict {
                    target,
                    measured: format!(
                        "{:.1} KiB each over {}",
                        memory.bytes_per_subscriber() / 1024.0,
                        thousands(memory.connected as f64)
                    ),
                    met: (memory.subscribers >= 10_000)
                        .then(|| memory.bytes_per_subscriber() <= TARGET_IDLE_BYTES),
                },
                None => Verdict::not_measured(target),
            });
        }
        for subject in [Subject::WsBatch, Subject::Ws, Subject::Grpc] {
            let target = format!(
                "{}: p99 at {} subscribers ≤ {TARGET_P99_GROWTH}× p99 at one ({TARGET_RATE} events/s)",
                subject.label(),
                thousands(TARGET_SUBSCRIBERS as f64)
            );
            let pair = self.fanout(subject, 1, TARGET_RATE).zip(self.fanout(
                subject,
                TARGET_SUBSCRIBERS,
                TARGET_RATE,
            ));
            verdicts.push(match pair {
                Some((one, many)) => {
                    let growth = many.latency().p99_ms / one.latency().p99_ms.max(1e-3);
                    Verdict {
                        target,
                        measured: format!(
                            "{:.1} ms vs {:.1} ms = {growth:.1}×",
                            many.latency().p99_ms,
                            one.latency().p99_ms
                        ),
                        met: Some(growth <= TARGET_P99_GROWTH),
                    }
                }
                None => Verdict::not_measured(target),
            });
        }
        verdicts
    }

    /// Writes `results.json`, `report.md` and the charts into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("results.json"), serde_json::to_vec_pretty(self)?)?;
        let charts = self.charts(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown(&charts))?;
        Ok(())
    }

    /// One line per subject through the runs `keep` picks, each run at `point`.
    fn lines(
        &self,
        keep: &dyn Fn(&FanoutFigures) -> bool,
        point: &dyn Fn(&FanoutFigures) -> (f64, f64),
    ) -> Vec<Series> {
        self.subjects()
            .into_iter()
            .map(|subject| Series {
                name: subject.label().to_owned(),
                colour: colour(subject),
                dashed: !subject.is_gateway(),
                points: self
                    .fanout
                    .iter()
                    .filter(|f| f.subject == subject && f.error.is_none() && keep(f))
                    .map(point)
                    .collect(),
            })
            .collect()
    }

    /// Draws the charts this run has data for; returns their file names and captions.
    fn charts(&self, dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
        let mut charts = Vec::new();
        let series_by_subscribers =
            |rate: f64, value: &dyn Fn(&FanoutFigures) -> f64| -> Vec<Series> {
                self.lines(&|f| f.rate == rate, &|f| (f.subscribers as f64, value(f)))
            };
        let per_rate =
            |title: &str, y: &str, value: &dyn Fn(&FanoutFigures) -> f64| -> Vec<Panel> {
                self.rates()
                    .into_iter()
                    .map(|rate| Panel {
                        title: format!("{title} at {} events/s", human(rate)),
                        x: ("subscribers".into(), Scale::Log),
                        y: (y.into(), Scale::Log),
                        series: series_by_subscribers(rate, value),
                    })
                    .collect()
            };
        if !self.fanout.is_empty() {
            let mut panels = per_rate("Deliveries/s", "deliveries per second", &|f| {
                f.deliveries_per_second
            });
            for (panel, rate) in panels.iter_mut().zip(self.rates()) {
                panel.series.push(Series {
                    name: "asked (subscribers × rate)".into(),
                    colour: 5,
                    dashed: true,
                    points: self
                        .subscriber_counts()
                        .iter()
                        .map(|&n| (n as f64, n as f64 * rate))
                        .collect(),
                });
            }
            draw(&dir.join("deliveries.svg"), &panels)?;
            charts.push(("deliveries.svg".into(), "Deliveries per second against subscribers (dashed: the bare baseline, and what was asked)".into()));
            draw(
                &dir.join("p99.svg"),
                &per_rate("p99 latency", "p99 latency, ms", &|f| f.latency().p99_ms),
            )?;
            charts.push((
                "p99.svg".into(),
                "p99 latency (publish → subscriber) against subscribers".into(),
            ));
            draw(
                &dir.join("cpu-per-delivery.svg"),
                &per_rate("Server CPU per delivery", "CPU µs per delivery", &|f| {
                    f.cpu_micros_per_delivery()
                }),
            )?;
            charts.push((
                "cpu-per-delivery.svg".into(),
                "Server CPU per delivery against subscribers".into(),
            ));
            let at = self
                .subscriber_counts()
                .into_iter()
                .filter(|&n| n <= TARGET_SUBSCRIBERS)
                .max();
            if let Some(subscribers) = at.filter(|_| self.rates().len() > 1) {
                let by_rate = |value: &dyn Fn(&FanoutFigures) -> f64| -> Vec<Series> {
                    self.lines(&|f| f.subscribers == subscribers, &|f| (f.rate, value(f)))
                };
                let panels = [
                    Panel {
                        title: format!("p99 latency, {subscribers} subscribers"),
                        x: ("events per second".into(), Scale::Linear),
                        y: ("p99 latency, ms".into(), Scale::Log),
                        series: by_rate(&|f| f.latency().p99_ms),
                    },
                    Panel {
                        title: format!("Server CPU per delivery, {subscribers} subscribers"),
                        x: ("events per second".into(), Scale::Linear),
                        y: ("CPU µs per delivery".into(), Scale::Log),
                        series: by_rate(&|f| f.cpu_micros_per_delivery()),
                    },
                ];
                draw(&dir.join("by-rate.svg"), &panels)?;
                charts.push((
                    "by-rate.svg".into(),
                    format!("How cost grows with the rate, at {subscribers} subscribers"),
                ));
            }
        }
        if !self.pipeline.is_empty() {
            let line = |name: &str,
                        colour: usize,
                        dashed: bool,
                        value: &dyn Fn(&PipelineFigures) -> f64| Series {
                name: name.into(),
                colour,
                dashed,
                points: self.pipeline.iter().map(|p| (p.rate, value(p))).collect(),
            };
            let panel = Panel {
                title: "Producer → subscriber latency".into(),
                x: ("events per second".into(), Scale::Linear),
                y: ("latency, ms".into(), Scale::Linear),
                series: vec![
                    line("pipeline p50", 0, false, &|p| p.pipeline.p50_ms),
                    line("pipeline p99", 1, false, &|p| p.pipeline.p99_ms),
                    line("bare Kafka p50", 0, true, &|p| p.bare_kafka.p50_ms),
                    line("bare Kafka p99", 1, true, &|p| p.bare_kafka.p99_ms),
                ],
            };
            draw(&dir.join("end-to-end.svg"), &[panel])?;
            charts.push((
                "end-to-end.svg".into(),
                "End-to-end latency through tansu, beside bare Kafka produce → consume".into(),
            ));
        }
        Ok(charts)
    }

    /// The report as Markdown.
    pub fn markdown(&self, charts: &[(String, String)]) -> String {
        let mut md = String::new();
        let info = &self.info;
        let _ = writeln!(md, "# StreamWeaver benchmark: {}\n", info.label);
        let _ = writeln!(
            md,
            "Started {} on {} cores, commit `{}`, gateway `{}`; took {:.1} minutes. Load average (1/5/15 min) {:.2} / {:.2} / {:.2} before, {:.2} / {:.2} / {:.2} after: the machine is shared, so figures taken while others compile are noisier and lower.\n",
            info.started,
            info.cores,
            info.commit,
            info.gateway,
            info.minutes,
            info.load_before[0],
            info.load_before[1],
            info.load_before[2],
            info.load_after[0],
            info.load_after[1],
            info.load_after[2],
        );
        if let Some(nice) = info.nice {
            let _ = writeln!(
                md,
                "The benchmark and every process it started ran at nice {nice}, ahead of the other work on the machine.\n"
            );
        }
        for error in &self.errors {
            let _ = writeln!(md, "**A part failed:** {error}\n");
        }

        let verdicts = self.verdicts();
        if !self.fanout.is_empty() || !self.memory.is_empty() {
            let _ = writeln!(md, "## Targets (issue 7, this machine)\n");
            let _ = writeln!(md, "| target | measured | met |\n| --- | --- | --- |");
            for verdict in &verdicts {
                let met = match verdict.met {
                    Some(true) => "**met**",
                    Some(false) => "**not met**",
                    None => "not measured",
                };
                let _ = writeln!(md, "| {} | {} | {met} |", verdict.target, verdict.measured);
            }
            md.push('\n');
        }

        if !self.fanout.is_empty() {
            self.fanout_section(&mut md);
        }
        if !self.memory.is_empty() {
            let _ = writeln!(md, "## Memory per idle subscriber\n");
            let _ = writeln!(
                md,
                "Server resident memory (`VmRSS`) before any subscriber and with every subscriber connected and subscribed to `{}` — a symbol that never occurs — after 3 s to settle.\n",
                crate::fanout::IDLE_REQUEST
            );
            let _ = writeln!(
                md,
                "| server | subscribers | RSS before → after | per subscriber |\n| --- | --- | --- | --- |"
            );
            for memory in &self.memory {
                match &memory.error {
                    Some(error) => {
                        let _ = writeln!(
                            md,
                            "| {} | {} | failed: {error} | |",
                            memory_label(memory.subject),
                            thousands(memory.subscribers as f64)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            md,
                            "| {} | {} of {} | {:.1} → {:.1} MiB | **{:.1} KiB** |",
                            memory_label(memory.subject),
                            thousands(memory.connected as f64),
                            thousands(memory.subscribers as f64),
                            memory.rss_before as f64 / 1_048_576.0,
                            memory.rss_after as f64 / 1_048_576.0,
                            memory.bytes_per_subscriber() / 1024.0
                        );
                    }
                }
            }
            md.push('\n');
        }
        if !self.pipeline.is_empty() || self.flat_out.is_some() {
            let _ = writeln!(md, "## End to end, beside bare Kafka\n");
            let _ = writeln!(
                md,
                "producer → tansu → stream-consumer → gateway → one gRPC subscriber, beside the same producer → tansu → a plain rdkafka consumer (the floor the gateway stands on), at the same rate, each on a fresh broker, after a 2 s warm-up. Latency is the producer's timestamp → arrival.\n"
            );
            if !self.pipeline.is_empty() {
                let _ = writeln!(
                    md,
                    "| events/s | measured | bare Kafka p50 / p90 / p99 | pipeline p50 / p90 / p99 | the gateway's hops add (p50) |\n| --- | --- | --- | --- | --- |"
                );
                for p in &self.pipeline {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.1} / {:.1} / {:.1} ms | {:.1} / {:.1} / {:.1} ms | {:.1} ms |",
                        thousands(p.rate),
                        p.events,
                        p.bare_kafka.p50_ms,
                        p.bare_kafka.p90_ms,
                        p.bare_kafka.p99_ms,
                        p.pipeline.p50_ms,
                        p.pipeline.p90_ms,
                        p.pipeline.p99_ms,
                        p.pipeline.p50_ms - p.bare_kafka.p50_ms
                    );
                }
                md.push('\n');
            }
            if let Some(flat_out) = &self.flat_out {
                let _ = writeln!(
                    md,
                    "The pipeline flat out ({} events): **{} events/s** through to the subscriber.\n",
                    thousands(flat_out.events as f64),
                    thousands(flat_out.events_per_second)
                );
            }
        }
        if let Some(design) = &self.design {
            let _ = writeln!(
                md,
                "## Consumer → gateway, beside the original Python design\n"
            );
            let _ = writeln!(
                md,
                "The same events through StreamWeaver's client-streaming `Publish` and through the original design (one HTTP POST of JSON per message into a server that broadcasts to WebSockets), both in Rust, to one WebSocket subscriber; no Kafka.\n"
            );
            let _ = writeln!(
                md,
                "| run | StreamWeaver | original design | ratio |\n| --- | --- | --- | --- |"
            );
            let _ = writeln!(
                md,
                "| flat out, {} events | {} events/s | {} events/s | {:.1}× |",
                thousands(design.events as f64),
                thousands(design.ours_flat_out.events_per_second),
                thousands(design.original_flat_out.events_per_second),
                design.ours_flat_out.events_per_second
                    / design.original_flat_out.events_per_second.max(1e-9)
            );
            let _ = writeln!(
                md,
                "| steady {} events/s, latency p50 / p99 | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.2}× / {:.2}× |\n",
                human(design.rate),
                design.ours_steady.latency.p50_ms,
                design.ours_steady.latency.p99_ms,
                design.original_steady.latency.p50_ms,
                design.original_steady.latency.p99_ms,
                design.ours_steady.latency.p50_ms / design.original_steady.latency.p50_ms.max(1e-9),
                design.ours_steady.latency.p99_ms / design.original_steady.latency.p99_ms.max(1e-9),
            );
        }
        if let Some(costs) = &self.costs {
            costs_section(&mut md, costs);
        }
        if !charts.is_empty() {
            let _ = writeln!(md, "## Charts\n");
            for (file, caption) in charts {
                let _ = writeln!(md, "{caption}:\n\n![{caption}]({file})\n");
            }
        }
        let _ = writeln!(md, "## How it was measured\n");
        let _ = writeln!(md, "{}", METHOD.trim());
        let _ = writeln!(
            md,
            "\nThis run: warm-up at least {:.0} s, {:.0} s of events measured per fan-out run, {} gRPC streams per HTTP/2 connection. Every figure is in `results.json` beside this report.",
            info.warm_up_seconds, info.measure_seconds, info.streams_per_connection
        );
        md
    }

    fn fanout_section(&self, md: &mut String) {
        let _ = writeln!(md, "## Fan-out\n");
        let _ = writeln!(
            md,
            "Every subscriber takes every event (an empty `SubscribeRequest`). *asked* is subscribers × rate; *vs bare* divides by the bare baseline's deliveries/s in the same configuration (batched WebSocket by the batched baseline, the others by the frame-per-event one). *missing* counts measured events a subscriber had not received when the run ended (it waits until every subscriber has the last event, or as long again as the measured stretch, at least 5 s); *gaps* the gap notices; *order* events out of order or skipped within a partition without a notice. Server and client CPU are in cores (2 = the whole machine).\n"
        );
        for rate in self.rates() {
            let _ = writeln!(md, "### {} events/s\n", thousands(rate));
            let _ = writeln!(
                md,
                "| subscribers | subject | deliveries/s | of asked | vs bare | p50 ms | p99 ms | max ms | missing | gaps | order | server cores | CPU µs/delivery | client cores |"
            );
            let _ = writeln!(
                md,
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            );
            for subscribers in self.subscriber_counts() {
                for figures in self
                    .fanout
                    .iter()
                    .filter(|f| f.rate == rate && f.subscribers == subscribers)
                {
                    if let Some(error) = &figures.error {
                        let _ = writeln!(
                            md,
                            "| {} | {} | failed: {} | | | | | | | | | | | |",
                            thousands(subscribers as f64),
                            figures.subject.label(),
                            error.replace('|', "/")
                        );
                        continue;
                    }
                    let vs_bare = if figures.subject.is_gateway() {
                        self.fanout(figures.subject.baseline(), subscribers, rate)
                            .map(|bare| {
                                format!(
                                    "{:.2}×",
                                    figures.deliveries_per_second
                                        / bare.deliveries_per_second.max(1.0)
                                )
                            })
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    let latency = figures.latency();
                    let connected = if figures.client.connected < subscribers {
                        format!(" ({} connected)", figures.client.connected)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        md,
                        "| {}{connected} | {} | {} | {:.0} % | {vs_bare} | {:.1} | {:.1} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                        thousands(subscribers as f64),
                        figures.subject.label(),
                        thousands(figures.deliveries_per_second),
                        100.0 * figures.deliveries_per_second / figures.asked_per_second(),
                        latency.p50_ms,
                        latency.p99_ms,
                        latency.max_ms,
                        figures.client.missing,
                        figures.client.gaps,
                        figures.client.out_of_order + figures.client.unannounced_skips,
                        figures.server_cores(),
                        figures.cpu_micros_per_delivery(),
                        figures.client_cores(),
                    );
                }
            }
            md.push('\n');
        }
        let profiles: Vec<&FanoutFigures> =
            self.fanout.iter().filter(|f| f.profile.is_some()).collect();
        if !profiles.is_empty() {
            let _ = writeln!(md, "`perf` profiles of the gateway over the measured window (`perf report --no-children`, functions by their own samples):
");
            for figures in profiles {
                let file = figures.profile.as_deref().unwrap_or_default();
                let _ = writeln!(
                    md,
                    "- {}, {} subscribers, {} events/s: [{file}]({file})",
                    figures.subject.label(),
                    thousands(figures.subscribers as f64),
                    thousands(figures.rate)
                );
            }
            md.push('\n');
        }
    }
}

/// A whole number with thousands separated: 251,300.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

fn colour(subject: Subject) -> usize {
    match subject {
        Subject::WsBatch => 0,
        Subject::Ws => 1,
        Subject::Grpc => 2,
        Subject::BareBatch => 0,
        Subject::Bare => 1,
    }
}

fn memory_label(subject: Subject) -> &'static str {
    match subject {
        Subject::Ws | Subject::WsBatch => "gateway, WebSocket",
        Subject::Grpc => "gateway, gRPC streams",
        Subject::Bare | Subject::BareBatch => "bare baseline, WebSocket",
    }
}

const METHOD: &str = r#"
- **The gateway under test** is the release binary, a separate process on a free loopback port with default flags (except room for 20,000 subscribers), started fresh for every run. Events go in through `IngestService.Publish` from the benchmark, a batch every millisecond at the given rate, each stamped with its send time as `produced_at`; they are spread over three topics × three partitions with consecutive offsets.
- **The bare baseline** (`bench-bare`) is the floor: a minimal tokio program that takes the same `Publish` stream, encodes each event once into the same proto3 JSON, and broadcasts those bytes (a `tokio::sync::broadcast` of the gateway's default depth, 8,192) to plain WebSocket connections — one frame per event, or a JSON array of whatever is ready when batched — with no filter, history or metrics.
- **The load client** (`bench-client`) is one Rust process holding every subscriber on one tokio runtime: WebSocket connections, or gRPC streams multiplexed over HTTP/2 connections. It reads only the envelope fields it needs straight off the wire (no full decode), counts every frame, checks per partition that offsets arrive in order with nothing skipped unannounced, and times each event from `produced_at` to arrival (HdrHistogram). Its own CPU (from `/proc/self/stat`) is reported beside the server's, so a saturated client shows.
- **A run**: connect every subscriber; publish until every one has received an event and the warm-up has passed; then measure a numbered stretch of events and wait until every subscriber has the last of them (or as long again as the stretch). *Deliveries/s* is measured events received ÷ (first measured event sent → last received). *Server CPU* is the process's user + system time from `/proc/PID/stat` over that window.
- **Memory per idle subscriber**: the server's `VmRSS` growth from none to all subscribers, each subscribed to a symbol that never occurs (gRPC: idle streams the same way).
- **End to end**: producer → tansu → stream-consumer → gateway → gRPC subscriber, beside producer → tansu → a plain consumer with the same `fetch.wait.max.ms` (5 ms), on fresh in-memory brokers.
- Everything runs on the same 2 cores: server, load client and publisher compete, as they would on any single machine. Figures are for comparison within a run.
"#;

/// Part `costs`: filter expressions beside list fields, and client decoding.
fn costs_section(md: &mut String, costs: &crate::costs::CostFigures) {
    let _ = writeln!(
        md,
        "## CPU per event: filter expressions, client decoding\n"
    );
    let _ = writeln!(
        md,
        "Thread CPU time in one process on the gateway's own code, best of 5. A filter is evaluated once per event for all the subscribers that share it, and only on the events its topics and keys may match (the events it is offered here).\n"
    );
    let _ = writeln!(
        md,
        "| filter | CPU per event | offered → matched |\n| --- | --- | --- |"
    );
    for filter in &costs.filters {
        let _ = writeln!(
            md,
            "| {} | {:.0} ns | {} → {} |",
            filter.filter, filter.ns_per_event, filter.offered, filter.matched
        );
    }
    let _ = writeln!(
        md,
        "\nA client decoding one trade event from the gateway's shared encoding (what the binary WebSocket saves a client, beside JSON):\n"
    );
    let _ = writeln!(
        md,
        "| encoding | bytes | CPU per event |\n| --- | --- | --- |"
    );
    for decode in &costs.decoding {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} µs |",
            decode.encoding,
            decode.bytes,
            decode.ns_per_event / 1000.0
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client::ClientReport, stats::Latencies};

    fn run(
        subject: Subject,
        subscribers: usize,
        rate: f64,
        per_second: f64,
        p99_ms: f64,
    ) -> FanoutFigures {
        let expected = subscribers as u64 * rate as u64 * 5;
        let deliveries = (per_second * 5.0) as u64;
        FanoutFigures {
            subject,
            subscribers,
            rate,
            error: None,
            connect_failed: 0,
            connect_error: None,
            connect_seconds: 1.0,
            all_live: true,
            events: rate as u64 * 5,
            client: ClientReport {
                connected: subscribers,
                deliveries,
                expected,
                missing: expected.saturating_sub(deliveries),
                latency: Latencies {
                    p99_ms,
                    ..Latencies::default()
                },
                ..ClientReport::default()
            },
            deliveries_per_second: per_second,
            window_seconds: 5.0,
            server_cpu_seconds: 5.0,
            server_wall_seconds: 5.0,
            server_rss_bytes: 0,
            profile: None,
        }
    }

    fn results(fanout: Vec<FanoutFigures>, memory: Vec<MemoryFigures>) -> Results {
        Results {
            info: RunInfo {
                label: "test".into(),
                started: "now".into(),
                commit: "abc".into(),
                gateway: "gateway".into(),
                cores: 2,
                load_before: [0.0; 3],
                load_after: [0.0; 3],
                minutes: 1.0,
                warm_up_seconds: 2.0,
                measure_seconds: 5.0,
                streams_per_connection: 100,
                nice: None,
            },
            design: None,
            fanout,
            memory,
            pipeline: Vec::new(),
            flat_out: None,
            costs: None,
            errors: Vec::new(),
        }
    }

    fn met(results: &Results, starts_with: &str) -> Option<bool> {
        results
            .verdicts()
            .into_iter()
            .find(|v| v.target.starts_with(starts_with))
            .unwrap_or_else(|| panic!("no target {starts_with}"))
            .met
    }

    #[test]
    fn targets_are_judged_against_the_baseline_of_the_same_run() {
        let results = results(
            vec![
                run(Subject::WsBatch, 1, 400.0, 400.0, 2.0),
                run(Subject::WsBatch, 1_000, 400.0, 400_000.0, 3.0),
                run(Subject::BareBatch, 1_000, 400.0, 400_000.0, 1.0),
                run(Subject::Ws, 1, 400.0, 400.0, 2.0),
                run(Subject::Ws, 1_000, 400.0, 150_000.0, 300.0),
                run(Subject::Bare, 1_000, 400.0, 400_000.0, 1.0),
            ],
            vec![MemoryFigures {
                subject: Subject::Ws,
                subscribers: 10_000,
                connected: 10_000,
                connect_error: None,
                rss_before: 10 << 20,
                rss_after: (10 << 20) + 10_000 * 134 * 1024,
                error: None,
            }],
        );
        assert_eq!(
            met(&results, "gateway WebSocket, batched: at 1,000"),
            Some(true)
        );
        assert_eq!(
            met(&results, "gateway WebSocket, frame per event: at 1,000"),
            Some(false)
        );
        assert_eq!(
            met(&results, "gateway WebSocket, batched: 1,000 subscribers"),
            Some(true)
        );
        assert_eq!(
            met(
                &results,
                "gateway WebSocket, frame per event: 1,000 subscribers"
            ),
            Some(false)
        );
        assert_eq!(met(&results, "gateway gRPC: 1,000 subscribers"), None);
        assert_eq!(met(&results, "idle WebSocket"), Some(false));
        assert_eq!(met(&results, "idle gRPC"), None);
        assert_eq!(met(&results, "gateway WebSocket, batched: p99"), Some(true));
        assert_eq!(
            met(&results, "gateway WebSocket, frame per event: p99"),
            Some(false)
        );
        let markdown = results.markdown(&[]);
        assert!(
            markdown.contains(
                "| 1,000 | gateway WebSocket, frame per event | 150,000 | 38 % | 0.38× |"
            ),
            "{markdown}"
        );
        assert!(markdown.contains("**134.0 KiB**"), "{markdown}");
    }

    #[test]
    fn big_numbers_are_grouped() {
        assert_eq!(thousands(251_300.4), "251,300");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(-12_345.0), "-12,345");
        assert_eq!(thousands(f64::NAN), "–");
    }
}
