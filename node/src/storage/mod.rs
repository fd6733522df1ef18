//! Durable storage: a segmented write-ahead log of checksummed records, the hard
//! state written atomically, snapshots, and a lock on the data directory.
//!
//! Contract for drivers: `Storage::open(dir)` recovers `(Storage, replica::Recovered)`;
//! `write(...)` buffers one `Output::Persist` (snapshot, truncate, entries, hard state)
//! without fsync; `sync()` makes everything written so far durable with as few fsyncs
//! as possible (group commit). Only after `sync()` returns may the driver report
//! `Input::Persisted { seq }` for the writes it covered.
