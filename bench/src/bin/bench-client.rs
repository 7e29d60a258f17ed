//! `bench-client`: the benchmark's load client; `bench` starts and drives it.

use clap::Parser;
use streamweaver_bench::client::{ClientArgs, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(ClientArgs::parse()).await
}
