//! The log producer: request logs of a small fleet of services, with realistic proportions of
//! levels (mostly INFO, a little WARN and ERROR), long-tailed latencies, and statuses that agree
//! with the level; keyed by service so each service's lines stay in order.

use std::time::SystemTime;

use prost::Message;
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use rand_distr::{Distribution, LogNormal};
use streamweaver_common::producer::{EventSource, Record};
use streamweaver_proto::{
    time::timestamp,
    topics,
    v1::{LogEntry, LogLevel},
};

/// Services and the endpoints they serve.
const SERVICES: &[(&str, &[&str])] = &[
    (
        "api-gateway",
        &[
            "GET /api/v1/health",
            "GET /api/v1/portfolio",
            "POST /api/v1/session",
        ],
    ),
    (
        "auth-service",
        &[
            "POST /oauth/token",
            "GET /oauth/userinfo",
            "POST /oauth/revoke",
        ],
    ),
    (
        "order-service",
        &["POST /orders", "GET /orders/{id}", "DELETE /orders/{id}"],
    ),
    (
        "payment-service",
        &["POST /payments", "GET /payments/{id}", "POST /refunds"],
    ),
    ("search-service", &["GET /search", "GET /suggest"]),
    (
        "notification-service",
        &["POST /notify/email", "POST /notify/push"],
    ),
];

/// Cumulative level proportions: DEBUG 10 %, INFO 72 %, WARN 12 %, ERROR 6 %.
const LEVELS: &[(f64, LogLevel)] = &[
    (0.10, LogLevel::Debug),
    (0.82, LogLevel::Info),
    (0.94, LogLevel::Warn),
    (1.00, LogLevel::Error),
];

const ERRORS: &[(u32, &str)] = &[
    (500, "unhandled exception: connection reset by peer"),
    (502, "upstream returned an invalid response"),
    (503, "circuit breaker open for downstream dependency"),
    (504, "upstream request timed out"),
];

const WARNINGS: &[(u32, &str)] = &[
    (429, "rate limit exceeded for client"),
    (404, "resource not found"),
    (409, "conflicting update, retry advised"),
    (200, "slow request"),
];

/// Makes log lines for a fleet of services.
pub struct ServerLogs {
    latency: LogNormal<f64>,
    sequence: u64,
}

impl Default for ServerLogs {
    fn default() -> Self {
        Self {
            // Median about 33 ms with a long tail; constants valid for LogNormal.
            latency: LogNormal::new(3.5, 0.8).unwrap_or_else(|_| unreachable!()),
            sequence: 0,
        }
    }
}

impl ServerLogs {
    /// The next log line as a typed message.
    pub fn next_entry(&mut self, rng: &mut StdRng, now: SystemTime) -> LogEntry {
        let &(service, endpoints) = SERVICES.choose(rng).unwrap_or(&SERVICES[0]);
        let endpoint = endpoints.choose(rng).copied().unwrap_or("GET /");
        let draw: f64 = rng.random();
        let level = LEVELS
            .iter()
            .find(|(upto, _)| draw < *upto)
            .map_or(LogLevel::Info, |&(_, level)| level);
        let mut latency_ms = self.latency.sample(rng);
        let (status_code, message) = match level {
            LogLevel::Error => {
                latency_ms *= 4.0;
                let &(status, text) = ERRORS.choose(rng).unwrap_or(&ERRORS[0]);
                (status, text.to_owned())
            }
            LogLevel::Warn => {
                let &(status, text) = WARNINGS.choose(rng).unwrap_or(&WARNINGS[0]);
                if status == 200 {
                    latency_ms = latency_ms.max(800.0) * 2.0;
                }
                (status, text.to_owned())
            }
            LogLevel::Debug => (0, format!("cache lookup for {endpoint}")),
            _ => {
                let status = if endpoint.starts_with("POST") {
                    201
                } else {
                    200
                };
                (status, format!("{endpoint} completed"))
            }
        };
        self.sequence += 1;
        LogEntry {
            log_id: format!(
                "L{:012x}{:06}",
                rng.random::<u64>() >> 16,
                self.sequence % 1_000_000
            ),
            service: service.to_owned(),
            level: level.into(),
            message,
            host: format!("{service}-{}", rng.random_range(1..=3)),
            endpoint: endpoint.to_owned(),
            status_code,
            latency_ms: (latency_ms * 10.0).round() / 10.0,
            trace_id: format!("{:032x}", rng.random::<u128>()),
            timestamp: Some(timestamp(now)),
        }
    }
}

impl EventSource for ServerLogs {
    fn topic(&self) -> &'static str {
        topics::SERVER_LOGS
    }

    fn next_record(&mut self, rng: &mut StdRng, now: SystemTime) -> Record {
        let entry = self.next_entry(rng, now);
        Record {
            key: entry.service.clone(),
            value: entry.encode_to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn levels_come_in_realistic_proportions() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut source = ServerLogs::default();
        let entries: Vec<LogEntry> = (0..20_000)
            .map(|_| source.next_entry(&mut rng, SystemTime::now()))
            .collect();
        let share = |level: LogLevel| {
            entries.iter().filter(|e| e.level() == level).count() as f64 / entries.len() as f64
        };
        assert!((share(LogLevel::Info) - 0.72).abs() < 0.02);
        assert!((share(LogLevel::Error) - 0.06).abs() < 0.01);
        assert!((share(LogLevel::Warn) - 0.12).abs() < 0.015);
        for entry in entries.iter().filter(|e| e.level() == LogLevel::Error) {
            assert!(entry.status_code >= 500, "{entry:?}");
        }
        assert!(entries.iter().all(|e| e.latency_ms > 0.0));
    }
}
