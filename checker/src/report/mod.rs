//! The HTML report: a self-contained page (inline CSS, JS, SVG, images) with the
//! verdict, summary tables, plots, counterexamples and a timeline.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a real or simulated run adds to a bare history (all optional for a history
/// checked on its own).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// A short name of the run ("partition-kill-pause", "c50-bad.edn").
    pub name: String,
    /// The exact command that replays the run.
    pub command: String,
    pub seed: Option<u64>,
    /// The run's configuration as shown in the report (nodes, clients, rate, ...).
    pub config: Value,
    /// Fault intervals, for shading plots.
    pub faults: Vec<FaultInterval>,
    /// Cluster events (leader and term changes), for the timeline.
    pub cluster_events: Vec<ClusterEvent>,
}

/// One fault, from its start to its end (nanoseconds since the run started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultInterval {
    /// "partition", "kill", "pause", "membership".
    pub kind: String,
    pub start_ns: u64,
    /// `None` if it never ended (should not happen: runs heal at the end).
    pub end_ns: Option<u64>,
    /// Free text: the grudge, the node ids.
    pub detail: String,
}

/// Something the cluster did, as observed by the runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub time_ns: u64,
    /// "leader", "term", ...
    pub kind: String,
    pub node: Option<u64>,
    pub detail: String,
}
