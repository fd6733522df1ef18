//! The history recorder of a real run: every client and nemesis event, stamped with
//! a monotonic nanosecond time since the run started, in the order the times were
//! taken, into one [`Recording`] (the same as the simulator's).
//!
//! Index and time are assigned under one lock, so line order is real-time order and
//! the checker can trust both. A std `Mutex`, because nothing awaits while it is held.

use crate::history::Recording;
use crate::ops::Op;
use checker::history::{EventType, History};
use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Too many events means something is wrong with the rate limiter; stop recording
/// rather than eat the machine's memory.
pub const MAX_EVENTS: usize = 20_000_000;

/// Shared by every client task and the nemesis.
pub struct Recorder {
    start: Instant,
    recording: Mutex<Recording>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("start", &self.start)
            .field("events", &self.len())
            .finish()
    }
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            recording: Mutex::new(Recording::new()),
        }
    }

    /// The run's start: every time in the history is measured from it.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the start of the run.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.recording.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `record` now, under the lock, with the time read under it too, so times
    /// never go backwards in line order. `None` when the history is full.
    fn now(&self, record: impl FnOnce(&mut Recording, u64)) -> Option<u64> {
        let mut recording = self.lock();
        if recording.len() >= MAX_EVENTS {
            return None;
        }
        let time_ns = self.now_ns();
        record(&mut recording, time_ns);
        Some(time_ns)
    }

    /// Records a client event now; returns its time.
    pub fn client(
        &self,
        process: u64,
        kind: EventType,
        op: &Op,
        value: Value,
        error: Option<&str>,
    ) -> Option<u64> {
        self.now(|r, t| r.client(t, process, kind, op, value, error))
    }

    /// Records a fault event now; returns its time.
    pub fn nemesis(&self, f: &str, value: Value) -> Option<u64> {
        self.now(|r, t| r.nemesis(t, f, value))
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The history recorded so far; the recorder starts again empty.
    pub fn take(&self) -> Result<History, String> {
        std::mem::take(&mut *self.lock()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_follow_line_order_and_the_history_pairs() {
        let rec = Recorder::new(Instant::now());
        let ops = [Op::Read { key: 0 }, Op::Write { key: 1, value: 9 }];
        for (p, op) in ops.iter().enumerate() {
            rec.client(p as u64, EventType::Invoke, op, op.input(), None);
        }
        rec.nemesis("kill-start", json!({"nodes": [1]}));
        rec.client(0, EventType::Ok, &ops[0], json!(9), None);
        rec.client(1, EventType::Info, &ops[1], ops[1].input(), Some("timeout"));
        assert_eq!(rec.len(), 5);
        let h = rec.take().expect("pairs");
        assert!(rec.is_empty());
        let times: Vec<u64> = h.events.iter().filter_map(|e| e.time).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(h.ops.len(), 2);
        assert_eq!(h.ops[0].output, json!(9));
        assert_eq!(h.ops[1].error.as_deref(), Some("timeout"));
    }
}
