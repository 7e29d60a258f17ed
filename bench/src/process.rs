//! The processes a benchmark runs — the gateway under test, the bare baseline, the load client —
//! and what Linux says about them: CPU time from `/proc/PID/stat`, resident memory from
//! `/proc/PID/status`, the machine's load from `/proc/loadavg`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// Clock ticks per second in `/proc/PID/stat` (Linux's `USER_HZ`, 100 on every architecture it
/// exports to user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system, all threads) a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 of the whole line (utime, stime); the third is the first after ')'.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        fields
            .get(index - 3)
            .and_then(|value| value.parse::<f64>().ok())
            .with_context(|| format!("{path}: no field {index}"))
    };
    Ok((ticks(14)? + ticks(15)?) / TICKS_PER_SECOND)
}

/// CPU seconds this process has used so far.
pub fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds(std::process::id())
}

/// Resident memory of a process, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .with_context(|| format!("{path}: no VmRSS"))
}

/// The machine's load averages over 1, 5 and 15 minutes.
pub fn load_average() -> anyhow::Result<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").context("cannot read /proc/loadavg")?;
    let mut values = text
        .split_whitespace()
        .map(|value| value.parse::<f64>().unwrap_or(f64::NAN));
    Ok([
        values.next().unwrap_or(f64::NAN),
        values.next().unwrap_or(f64::NAN),
        values.next().unwrap_or(f64::NAN),
    ])
}

/// Raises this process's soft limit on open files to its hard limit, which child processes
/// inherit: 10,000 subscribers need 10,000 sockets on each side.
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the open files limit")
}

/// A port nobody listens on right now.
pub fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Where the benchmark's own binaries are: beside the running one (`target/release`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running binary")?;
    let dir = exe
        .parent()
        .context("the running binary has no directory")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p gateway -p streamweaver-bench` (make bench does)",
            path.display()
        );
    }
    Ok(path)
}

/// A server process under test, killed when dropped; its standard error goes to a log file.
pub struct Server {
    child: Child,
    pid: u32,
    name: String,
    log: PathBuf,
}

impl Server {
    /// Starts `binary` with `args` and `env`, logging to `log`, and waits until every address in
    /// `listening` accepts connections.
    pub async fn start(
        binary: &Path,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
        listening: &[SocketAddr],
    ) -> anyhow::Result<Self> {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(binary)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let pid = child.id().context("the process ended at once")?;
        let mut server = Self {
            child,
            pid,
            name,
            log,
        };
        for address in listening {
            server.wait_listening(*address).await?;
        }
        Ok(server)
    }

    async fn wait_listening(&mut self, address: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening on {address}; see {}",
                    self.name,
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {address} within 30 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU seconds it has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// Its resident memory now, in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid)
    }

    /// Fails if it has died (a crash under load is a finding, not a figure).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status} during the run; see {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// Kills it and waits until it is gone.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
