//! The real `gateway` and `stream-consumer` binaries as child processes, for the fault tests:
//! each can be stopped (SIGTERM), killed (SIGKILL, as a crash would) and started again on the
//! same port and flags. The binaries come from the workspace's `target/<profile>/`, built before
//! the tests (`cargo build --bins`, as `make test` does).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::{Broker, CONSUMER_TEST_FLAGS, PUBLISH_TOKEN, free_port};

/// Where the workspace's binaries of this build profile are: the test executable lives in
/// `target/<profile>/deps/`.
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let test = std::env::current_exe().context("where the test runs from")?;
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in target/<profile>/deps")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is not built: run `cargo build --bins` first (make test does)",
            path.display()
        );
    }
    Ok(path)
}

/// A child process that can be stopped, killed and started again with the same flags. Its
/// output goes to `<logs>/<name>.log` (appended across restarts).
pub struct Service {
    name: String,
    binary: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// A service running `binary` with `args`, not started yet.
    pub fn new(name: &str, binary: &str, args: Vec<String>, logs: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.to_owned(),
            binary: self::binary(binary)?,
            args,
            log: logs.join(format!("{name}.log")),
            child: None,
        })
    }

    /// Starts it (again).
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.name);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Kills it with SIGKILL, as a crash would.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .await
                .with_context(|| format!("killing {}", self.name))?;
        }
        Ok(())
    }

    /// Asks it to stop (SIGTERM) and waits until it has (killing it after 20 s).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await
                .context("sending SIGTERM")?;
        }
        match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                child.kill().await?;
                bail!("{} did not stop within 20 s of SIGTERM", self.name);
            }
        }
        Ok(())
    }

    /// Whether it has exited by itself (a crash); it is forgotten then, and can be started again.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Waits until its output has a line containing `text` (a milestone it logs).
    pub async fn wait_for_log(&self, text: &str, within: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.lines().any(|line| line.contains(text)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{} did not log {text:?} within {within:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of its output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Waits until something listens on `address`.
pub async fn wait_listening(address: SocketAddr, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on {address} after {within:?}")
}

/// The `gateway` binary on a fixed port, reading `broker` for replays.
pub struct GatewayProcess {
    /// Where it listens.
    pub address: SocketAddr,
    /// The process.
    pub service: Service,
}

impl GatewayProcess {
    /// Starts a gateway on a free port with test settings and `extra` flags, named `name` in
    /// the logs.
    pub async fn start(
        broker: &Broker,
        logs: &Path,
        name: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut args: Vec<String> = [
            "--listen",
            &address.to_string(),
            "--publish-token",
            PUBLISH_TOKEN,
            "--kafka-bootstrap-servers",
            &broker.bootstrap,
            "--replay-fetch-wait-max-ms",
            "5",
            "--heartbeat",
            "1s",
            "--allowed-origins",
            "*",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut gateway = Self {
            address,
            service: Service::new(name, "gateway", args, logs)?,
        };
        gateway.restart().await?;
        Ok(gateway)
    }

    /// Starts it again (after a stop or a kill) and waits until it listens.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.service.start()?;
        wait_listening(self.address, Duration::from_secs(30)).await
    }

    /// `http://address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// The `stream-consumer` binary feeding one gateway, in its own consumer group, as its group's
/// one static member (named after the group), so that started again after a kill it takes its
/// old place at once.
pub fn consumer_process(
    broker: &Broker,
    gateway: &GatewayProcess,
    group: &str,
    logs: &Path,
    extra: &[&str],
) -> anyhow::Result<Service> {
    let mut args: Vec<String> = [
        "--bootstrap-servers",
        &broker.bootstrap,
        "--gateway-url",
        &gateway.url(),
        "--publish-token",
        PUBLISH_TOKEN,
        "--group-id",
        group,
        "--group-instance-id",
        group,
    ]
    .iter()
    .chain(&CONSUMER_TEST_FLAGS)
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut consumer = Service::new(group, "stream-consumer", args, logs)?;
    consumer.start()?;
    Ok(consumer)
}
