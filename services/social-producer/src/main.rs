//! `social-producer`: social posts to the `social_feed` topic.

use clap::Parser;
use social_producer::SocialPosts;
use streamweaver_common::producer;

/// Produces fake social posts (authors, hashtags, likes) to Kafka, keyed by author.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    producer: producer::ProducerArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    producer::main(Cli::parse().producer, SocialPosts::default()).await
}
