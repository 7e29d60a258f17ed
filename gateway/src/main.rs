//! `gateway`: the one port every subscriber and the consumer talk to.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gateway::{GatewayArgs, GatewayError};
use streamweaver_common::{EXIT_USAGE, shutdown, telemetry};

/// Streams live StreamWeaver events to gRPC, grpc-web and WebSocket subscribers, taking them in
/// from the stream-consumer over client-streaming gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    gateway: GatewayArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init_tracing();
    let cli = Cli::parse();
    let result = async {
        let listener = tokio::net::TcpListener::bind(cli.gateway.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.gateway.listen))?;
        gateway::run(listener, cli.gateway, shutdown::cancel_on_signal()).await?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error)
            if matches!(
                error.downcast_ref(),
                Some(GatewayError::Config(_) | GatewayError::Tls(_) | GatewayError::Auth(_))
            ) =>
        {
            eprintln!("gateway: {error}");
            ExitCode::from(EXIT_USAGE as u8)
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "gateway failed");
            ExitCode::FAILURE
        }
    }
}
