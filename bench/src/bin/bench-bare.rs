//! `bench-bare`: the bare fan-out baseline; `bench` starts it.

use clap::Parser;
use streamweaver_bench::bare::{BareArgs, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(BareArgs::parse()).await
}
