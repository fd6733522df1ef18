//! One thread for bulk background work (serializing snapshots, writing their files,
//! deleting log segments they made unnecessary), at a lower CPU priority than the
//! threads that serve clients.
//!
//! Why a thread of its own rather than tokio's blocking pool: the pool's threads also
//! run the write-ahead log's fsyncs, and Linux keeps a nice value per thread, so only
//! a dedicated thread can be lowered without slowing the log. Jobs run one at a time,
//! in the order given, which also keeps segment deletions a prefix of the log.

use crate::storage::Pace;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The handle on the background thread; the thread ends when this is dropped and its
/// queue is empty.
#[derive(Clone)]
pub struct Background {
    tx: mpsc::Sender<Job>,
    pace: Pace,
}

impl Background {
    /// Starts the thread and sets its nice value to `nice` (0 leaves it as the
    /// process's; a failure to lower it is logged and the work runs anyway). `pace`
    /// is how its jobs write (see [`Background::pace`]).
    pub fn start(nice: i32, pace: Pace) -> std::io::Result<Background> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                if nice != 0 {
                    lower_priority(nice);
                }
                while let Ok(job) = rx.recv() {
                    // A job that panics loses its own result (its caller sees the
                    // channel close), not the thread: later jobs still run.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a background (snapshot) job panicked");
                    }
                }
            })?;
        Ok(Background { tx, pace })
    }

    /// How jobs on this thread pace their bytes.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// Queues `f`, whose outcome nobody waits for.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        // A gone thread drops the job: the node is shutting down.
        let _ = self.tx.send(Box::new(f));
    }

    /// Queues `f`; the receiver gets its result (or an error when the thread is gone
    /// or `f` panicked).
    pub fn run<T, F>(&self, f: F) -> oneshot::Receiver<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        // A gone thread drops the job, and with it `tx`: the receiver sees the error.
        let _ = self.tx.send(job);
        rx
    }
}

/// Sets the calling thread's nice value (Linux keeps one per thread).
fn lower_priority(nice: i32) {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(nice, error = %e, "cannot lower the snapshot thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_and_a_panicking_one_spares_the_rest() {
        let bg = Background::start(19, Pace::default()).expect("thread starts");
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let o = order.clone();
        let first = bg.run(move || o.lock().map(|mut v| v.push(1)).is_ok());
        let boom = bg.run(|| -> u32 { panic!("a job that fails") });
        let o = order.clone();
        bg.spawn(move || {
            let _ = o.lock().map(|mut v| v.push(2));
        });
        let o = order.clone();
        let last = bg.run(move || o.lock().map(|mut v| v.push(3)).is_ok());
        assert_eq!(first.await, Ok(true));
        assert!(
            boom.await.is_err(),
            "the panicked job's caller sees the channel close"
        );
        assert_eq!(last.await, Ok(true));
        assert_eq!(*order.lock().expect("lock"), vec![1, 2, 3]);
    }
}
