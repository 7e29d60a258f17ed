//! Who may open one more connection: caps on open connections, in total and per client address.
//!
//! The cap counts connections (the sockets that cost file descriptors and buffers), not
//! subscriptions: a WebSocket carries one subscription, an HTTP/2 connection up to
//! `--http2-max-concurrent-streams` of them. A connection is admitted at accept, before any byte
//! is read, and holds a [`ConnectionPermit`] for its whole life — through a WebSocket upgrade too —
//! so the counts are exact whatever the protocol. Check and count happen under one lock, so two
//! connections racing for the last place cannot both get it.
//!
//! IPv6 clients are counted per /64 (one host usually owns a whole /64), IPv4 per address.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex, MutexGuard},
};

use prometheus_client::{metrics::gauge::Gauge, registry::Registry};

/// The two caps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub total: usize,
    /// Most connections open at once from one client address (IPv6: one /64).
    pub per_address: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The gateway holds its maximum of connections.
    #[error("the gateway has its maximum of {limit} connections open; try again later")]
    Total {
        /// `--max-connections`.
        limit: usize,
    },
    /// This client address holds its maximum of connections.
    #[error("{address} has its maximum of {limit} connections open; close one first")]
    PerAddress {
        /// The client's address, as counted (an IPv6 /64 shows as its prefix).
        address: IpAddr,
        /// `--max-connections-per-ip`.
        limit: usize,
    },
}

impl Refusal {
    /// A fixed label for `gateway_refused_total{endpoint="connection",reason=...}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Total { .. } => "too_many_connections",
            Self::PerAddress { .. } => "too_many_connections_from_address",
        }
    }
}

/// Counts open connections and admits new ones within the caps. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    counts: Mutex<Counts>,
    /// `gateway_connections`: open now.
    open: Gauge,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl Admission {
    /// Admission within `limits`, its gauge registered in `registry`.
    pub fn new(limits: Limits, registry: &mut Registry) -> Self {
        let open = Gauge::default();
        registry.register(
            "gateway_connections",
            "Client connections open now (every protocol)",
            open.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                limits,
                counts: Mutex::default(),
                open,
            }),
        }
    }

    /// Admits a connection from `peer`, or says which cap it would exceed.
    pub fn admit(&self, peer: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let address = counted_address(peer);
        let limits = self.inner.limits;
        let mut counts = self.inner.lock();
        if counts.total >= limits.total {
            return Err(Refusal::Total {
                limit: limits.total,
            });
        }
        let from_address = counts.per_address.entry(address).or_default();
        if *from_address >= limits.per_address {
            return Err(Refusal::PerAddress {
                address,
                limit: limits.per_address,
            });
        }
        *from_address += 1;
        counts.total += 1;
        self.inner.open.set(counts.total as i64);
        Ok(ConnectionPermit {
            inner: self.inner.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().total
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    address: IpAddr,
}

impl ConnectionPermit {
    /// The client address this connection is counted under.
    pub fn address(&self) -> IpAddr {
        self.address
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.inner.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.per_address.remove(&self.address);
            }
        }
        self.inner.open.set(counts.total as i64);
    }
}

/// The address a connection is counted under: IPv4 as is (also when mapped into IPv6), IPv6 by
/// its /64 prefix.
fn counted_address(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_address: usize) -> Admission {
        Admission::new(Limits { total, per_address }, &mut Registry::default())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn each_address_gets_its_share_and_the_total_holds() {
        let admission = admission(3, 2);
        let a1 = admission.admit(ip("10.0.0.1")).expect("first");
        let _a2 = admission.admit(ip("10.0.0.1")).expect("second");
        assert_eq!(
            admission
                .admit(ip("10.0.0.1"))
                .expect_err("third from one address"),
            Refusal::PerAddress {
                address: ip("10.0.0.1"),
                limit: 2
            }
        );
        let _b1 = admission.admit(ip("10.0.0.2")).expect("another address");
        assert_eq!(
            admission.admit(ip("10.0.0.3")).expect_err("over the total"),
            Refusal::Total { limit: 3 }
        );
        assert_eq!(admission.open(), 3);
        drop(a1);
        assert_eq!(admission.open(), 2);
        let _again = admission.admit(ip("10.0.0.1")).expect("a place came free");
    }

    #[test]
    fn places_are_given_back_and_forgotten() {
        let admission = admission(10, 10);
        let permits: Vec<_> = (0..5)
            .map(|_| admission.admit(ip("10.0.0.1")).expect("within caps"))
            .collect();
        drop(permits);
        assert_eq!(admission.open(), 0);
        assert!(admission.inner.lock().per_address.is_empty());
    }

    #[test]
    fn ipv6_hosts_count_per_64_and_mapped_ipv4_as_ipv4() {
        let admission = admission(10, 1);
        let _first = admission.admit(ip("2001:db8:1:2::1")).expect("first");
        let same_64 = admission.admit(ip("2001:db8:1:2:ffff::9"));
        assert!(
            matches!(same_64, Err(Refusal::PerAddress { address, .. }) if address == ip("2001:db8:1:2::")),
            "{same_64:?}"
        );
        let _other_64 = admission.admit(ip("2001:db8:1:3::1")).expect("another /64");
        let _v4 = admission.admit(ip("192.0.2.7")).expect("v4");
        assert!(admission.admit(ip("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn racing_threads_never_exceed_the_total() {
        let admission = admission(100, 1000);
        let admitted = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let admission = admission.clone();
                    scope.spawn(move || {
                        (0..50)
                            .filter_map(|_| admission.admit(ip("10.0.0.1")).ok())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect::<Vec<_>>()
        });
        assert_eq!(admitted.iter().map(Vec::len).sum::<usize>(), 100);
        assert_eq!(admission.open(), 100);
        drop(admitted);
        assert_eq!(admission.open(), 0);
    }
}
