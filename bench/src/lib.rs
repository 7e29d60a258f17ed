//! `make bench`: StreamWeaver's benchmarks, their load clients and baselines, and the report.
//!
//! Three binaries share this library: `bench` runs the parts and writes the report,
//! `bench-client` is the load client (many subscribers in one process), and `bench-bare` is the
//! bare fan-out baseline. Servers and clients are separate processes so that each one's CPU and
//! memory can be read from `/proc` on its own.

pub mod bare;
pub mod client;
pub mod costs;
pub mod design;
pub mod fanout;
pub mod pipeline;
pub mod plots;
pub mod process;
pub mod profile;
pub mod publish;
pub mod report;
pub mod stats;
pub mod suite;
pub mod wire;
