//! A `perf` profile of a server over a fan-out run's measured window: where its CPU goes, for
//! whoever has to make it cheaper. Needs Linux `perf` (`apt-get install linux-perf`).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context;
use tokio::process::{Child, Command};

/// Functions below this share of the samples are left out of the summary.
const PERCENT_LIMIT: &str = "0.7";

/// A `perf record` in progress.
pub struct Profile {
    recording: Child,
    data: PathBuf,
    name: String,
}

impl Profile {
    /// Samples process `pid`, with call graphs, for `duration`; the data goes into `dir`.
    pub fn record(pid: u32, dir: &Path, name: &str, duration: Duration) -> anyhow::Result<Self> {
        let data = dir.join(format!("perf-{name}.data"));
        let recording = Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
            .arg(&data)
            .args(["--", "sleep", &format!("{:.1}", duration.as_secs_f64())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start perf (apt-get install linux-perf)")?;
        Ok(Self {
            recording,
            data,
            name: name.to_owned(),
        })
    }

    /// Waits for the recording to end and writes `perf-<name>.txt` into `dir`: the functions that
    /// took the most samples themselves (`perf report --no-children`). Returns its file name.
    pub async fn summarise(mut self, dir: &Path) -> anyhow::Result<String> {
        self.recording.wait().await?;
        let report = Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--stdio",
                "-g",
                "none",
                "--sort",
                "dso,symbol",
            ])
            .args(["--percent-limit", PERCENT_LIMIT, "-i"])
            .arg(&self.data)
            .output()
            .await
            .context("cannot run perf report")?;
        let text: String = String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with("# ") && line.trim() != "#")
            .map(|line| format!("{line}\n"))
            .collect();
        let file = format!("perf-{}.txt", self.name);
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(&file), text)?;
        Ok(file)
    }
}
