//! Chunks of decoded events shared by every subscriber that replays the same offsets: a small
//! cache bounded in bytes (oldest out first), and the reads in flight, so concurrent requests for
//! one chunk wait for one read of Kafka.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use streamweaver_proto::topics::Topic;

use super::{ReplayError, Watermarks, metrics::ReplayMetrics};
use crate::event::SharedEvent;

/// Where a chunk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct ChunkKey {
    pub(super) topic: Topic,
    pub(super) partition: i32,
    pub(super) from: i64,
}

/// Events read from one partition, from a chunk's start up to (not including) `next`.
#[derive(Debug)]
pub(super) struct Chunk {
    /// The valid events, in offset order (dead letters left out).
    pub(super) events: Arc<[SharedEvent]>,
    /// The offset after the last one looked at.
    pub(super) next: i64,
    /// Roughly the memory the events take.
    pub(super) bytes: usize,
}

impl Chunk {
    /// Its events before offset `until`, shared when that is all of them.
    pub(super) fn before(&self, until: i64) -> Arc<[SharedEvent]> {
        match self.events.last() {
            Some(last) if last.offset() >= until => self
                .events
                .iter()
                .take_while(|e| e.offset() < until)
                .cloned()
                .collect(),
            _ => self.events.clone(),
        }
    }
}

/// What a chunk read found.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// Events; `at_end`: the read met the log end (never true of a chunk from the cache).
    Events { chunk: Arc<Chunk>, at_end: bool },
    /// Offsets below the log start.
    Missing { first: i64, last: i64 },
    /// The partition is gone or started again.
    Reset { now: Option<Watermarks> },
}

/// A chunk being read (or read), that any number of subscribers may wait for.
pub(super) type ChunkFuture = Shared<BoxFuture<'static, Result<Outcome, ReplayError>>>;

/// The cache and the reads in flight.
pub(super) struct Chunks {
    capacity_bytes: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    cached: HashMap<ChunkKey, Arc<Chunk>>,
    /// Cached keys, oldest first.
    order: VecDeque<ChunkKey>,
    bytes: usize,
    in_flight: HashMap<ChunkKey, ChunkFuture>,
}

impl Chunks {
    /// A cache of at most `capacity_bytes` of chunks (0: none kept; reads in flight are still
    /// shared).
    pub(super) fn new(capacity_bytes: usize) -> Self {
        Self {
            capacity_bytes,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state whole, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chunk at `key`: cached, in flight, or read by `read` in a task of its own (which must
    /// call [`Chunks::finished`] when done, whatever the outcome).
    pub(super) fn get_or_read(
        &self,
        key: ChunkKey,
        metrics: &ReplayMetrics,
        read: impl FnOnce() -> BoxFuture<'static, Result<Outcome, ReplayError>>,
    ) -> ChunkFuture {
        let mut state = self.state();
        if let Some(chunk) = state.cached.get(&key) {
            metrics.cache_hits.inc();
            let outcome = Outcome::Events {
                chunk: chunk.clone(),
                at_end: false,
            };
            return futures::future::ready(Ok(outcome)).boxed().shared();
        }
        if let Some(in_flight) = state.in_flight.get(&key) {
            metrics.cache_hits.inc();
            return in_flight.clone();
        }
        let task = tokio::spawn(read());
        let future = async move {
            task.await.unwrap_or_else(|join_error| {
                Err(ReplayError::Unavailable(format!(
                    "a replay read failed: {join_error}"
                )))
            })
        }
        .boxed()
        .shared();
        state.in_flight.insert(key, future.clone());
        future
    }

    /// A read is done: it is no longer in flight, and its events are kept if they fit.
    pub(super) fn finished(&self, key: ChunkKey, outcome: Option<&Outcome>) {
        let mut state = self.state();
        state.in_flight.remove(&key);
        let Some(Outcome::Events { chunk, .. }) = outcome else {
            return;
        };
        if chunk.events.is_empty() || chunk.bytes > self.capacity_bytes {
            return;
        }
        if let Some(replaced) = state.cached.insert(key, chunk.clone()) {
            state.bytes -= replaced.bytes;
            state.order.retain(|k| *k != key);
        }
        state.bytes += chunk.bytes;
        state.order.push_back(key);
        while state.bytes > self.capacity_bytes {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            if let Some(evicted) = state.cached.remove(&oldest) {
                state.bytes -= evicted.bytes;
            }
        }
    }

    /// Bytes of chunks cached now.
    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use streamweaver_proto::v1::{Event, StockTrade, event::Payload};

    use super::*;

    fn event(offset: i64) -> SharedEvent {
        SharedEvent::new(Event {
            topic: "stock_trades".into(),
            key: "AAPL".into(),
            partition: 0,
            offset,
            payload: Some(Payload::StockTrade(StockTrade {
                symbol: "AAPL".into(),
                price: 1.0,
                ..Default::default()
            })),
            ..Default::default()
        })
        .expect("valid")
    }

    fn chunk(from: i64, to: i64, bytes: usize) -> Outcome {
        Outcome::Events {
            chunk: Arc::new(Chunk {
                events: (from..to).map(event).collect(),
                next: to,
                bytes,
            }),
            at_end: false,
        }
    }

    fn key(from: i64) -> ChunkKey {
        ChunkKey {
            topic: Topic::StockTrades,
            partition: 0,
            from,
        }
    }

    #[test]
    fn chunks_past_the_end_asked_for_are_cut() {
        let Outcome::Events { chunk, .. } = chunk(10, 20, 1) else {
            unreachable!()
        };
        let offsets = |events: Arc<[SharedEvent]>| events.iter().map(|e| e.offset()).collect();
        let cut: Vec<i64> = offsets(chunk.before(13));
        assert_eq!(cut, [10, 11, 12]);
        assert!(Arc::ptr_eq(&chunk.before(20), &chunk.events));
    }

    #[test]
    fn the_cache_keeps_the_newest_chunks_within_its_bytes() {
        let chunks = Chunks::new(250);
        for from in [0, 100, 200] {
            chunks.finished(key(from), Some(&chunk(from, from + 10, 100)));
        }
        assert_eq!(chunks.cached_bytes(), 200);
        let state = chunks.state();
        assert!(!state.cached.contains_key(&key(0)));
        assert!(state.cached.contains_key(&key(100)) && state.cached.contains_key(&key(200)));
        drop(state);
        // Larger than the whole cache: not kept.
        chunks.finished(key(300), Some(&chunk(300, 310, 1_000)));
        assert!(!chunks.state().cached.contains_key(&key(300)));
    }

    #[tokio::test]
    async fn requests_for_a_chunk_in_flight_share_one_read() {
        let chunks = Arc::new(Chunks::new(1 << 20));
        let metrics = ReplayMetrics::default();
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = released.shared();
        let read = |chunks: Arc<Chunks>| {
            let reads = reads.clone();
            let released = released.clone();
            move || {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    let _ = released.await;
                    let outcome = chunk(0, 5, 10);
                    chunks.finished(key(0), Some(&outcome));
                    Ok(outcome)
                }
                .boxed()
            }
        };
        let first = chunks.get_or_read(key(0), &metrics, read(chunks.clone()));
        let second = chunks.get_or_read(key(0), &metrics, read(chunks.clone()));
        release.send(()).expect("the read waits");
        let (first, second) = (first.await, second.await);
        assert!(matches!(first, Ok(Outcome::Events { .. })));
        assert!(matches!(second, Ok(Outcome::Events { .. })));
        // Later: from the cache.
        let third = chunks
            .get_or_read(key(0), &metrics, read(chunks.clone()))
            .await;
        assert!(matches!(third, Ok(Outcome::Events { at_end: false, .. })));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(metrics.cache_hits.get(), 2);
    }
}
