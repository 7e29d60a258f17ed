//! Latency percentiles, kept in a form the report and its JSON can carry.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latencies {
    /// How many latencies.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latencies {
    /// From a histogram of microseconds.
    pub fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1_000.0;
        Self {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }

    /// From every latency measured.
    pub fn from_samples(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
        };
        Self {
            samples: samples.len() as u64,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_samples() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let latencies = Latencies::from_samples(samples);
        assert_eq!(latencies.samples, 100);
        assert_eq!(latencies.p50_ms, 51.0);
        assert_eq!(latencies.p99_ms, 99.0);
        assert_eq!(latencies.max_ms, 100.0);
        assert_eq!(Latencies::from_samples(Vec::new()).p99_ms, 0.0);
    }

    #[test]
    fn percentiles_of_a_histogram() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("bounds");
        for micros in 1..=1_000 {
            histogram.record(micros * 100).expect("in range");
        }
        let latencies = Latencies::from_micros(&histogram);
        assert!((latencies.p50_ms - 50.0).abs() < 0.1, "{latencies:?}");
        assert!((latencies.p99_ms - 99.0).abs() < 0.1, "{latencies:?}");
    }
}
