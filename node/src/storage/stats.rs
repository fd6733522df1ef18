//! fsync latency figures for the server's `/metrics`.

use std::time::Duration;

/// Counts and times every fsync storage issued (file and directory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsyncStats {
    /// Number of fsync calls.
    pub count: u64,
    /// Sum of their durations, in microseconds.
    pub total_micros: u64,
    /// The slowest one, in microseconds.
    pub max_micros: u64,
    /// Counts per power-of-two bucket: `buckets[i]` counts fsyncs that took less than
    /// `2^i` microseconds (and at least `2^(i-1)`); the last bucket takes the rest.
    /// Cumulative sums of these give Prometheus histogram buckets directly.
    pub buckets: [u64; FSYNC_BUCKETS],
}

/// Number of latency buckets: up to 2^22 µs (about 4 s), then "slower".
pub const FSYNC_BUCKETS: usize = 24;

impl FsyncStats {
    pub(crate) fn record(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count += 1;
        self.total_micros = self.total_micros.saturating_add(micros);
        self.max_micros = self.max_micros.max(micros);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[bucket.min(FSYNC_BUCKETS - 1)] += 1;
    }

    /// Upper bound, in microseconds, of bucket `i` (`None` for the last, unbounded one).
    pub fn bucket_upper_micros(i: usize) -> Option<u64> {
        (i + 1 < FSYNC_BUCKETS).then(|| 1u64 << i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        let mut s = FsyncStats::default();
        s.record(Duration::from_micros(0));
        s.record(Duration::from_micros(1));
        s.record(Duration::from_micros(3));
        s.record(Duration::from_secs(100));
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[2], 1);
        assert_eq!(s.buckets[FSYNC_BUCKETS - 1], 1);
        assert_eq!(s.max_micros, 100_000_000);
        assert_eq!(FsyncStats::bucket_upper_micros(2), Some(4));
        assert_eq!(FsyncStats::bucket_upper_micros(FSYNC_BUCKETS - 1), None);
    }
}
