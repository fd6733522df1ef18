//! The tokio side: HTTP API, peer transport, the driver task that owns the replica,
//! and the only clock in the node.
