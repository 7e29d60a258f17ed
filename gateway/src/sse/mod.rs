//! `GET /sse`: the subscription as Server-Sent Events, for browsers whose proxies break
//! WebSocket and for `curl -N`. The query string carries the `SubscribeRequest` ([`query`]);
//! each `data:` line is one `SubscribeResponse` in proto3 JSON, and each message's `id:` is a
//! resume token ([`token`]) of the subscriber's positions in every partition it follows, so the
//! `Last-Event-ID` a reconnecting `EventSource` sends resumes it exactly.

pub mod query;
pub mod token;
