//! The gateway: takes typed events from the stream-consumer on a client-streaming gRPC call and
//! streams them to every subscriber — native gRPC (grpcurl, services), grpc-web and WebSocket
//! (browsers) — on one port, without letting a slow subscriber slow anyone else.

pub mod admission;
pub mod auth;
pub mod config;
pub mod event;
pub mod expr;
pub mod filter;
pub mod hub;
pub mod ingest;
pub mod metrics;
pub mod replay;
pub mod serve;
pub mod server;
pub mod sse;
pub mod subscribe;
pub mod tls;
pub mod websocket;

pub use config::GatewayArgs;
pub use server::{GatewayError, run};
