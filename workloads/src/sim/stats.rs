//! The counts a run of seeds adds up for its summary.

/// Counts for the summary.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub virtual_ns: u64,
    pub ops_ok: u64,
    pub ops_fail: u64,
    pub ops_info: u64,
    pub leader_changes: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub pauses: u64,
    pub messages: u64,
    pub snapshots_taken: u64,
    /// Snapshots written as the previous one plus a delta (counted in `snapshots_taken`
    /// once ready).
    pub snapshot_deltas: u64,
    pub snapshots_installed: u64,
    /// Seeds in which some node installed a snapshot from its leader.
    pub seeds_with_install: u64,
    /// Membership changes asked of a leader, and how they were answered.
    pub membership_changes: u64,
    pub membership_done: u64,
    pub membership_refused: u64,
    /// Configuration entries applied (C_old,new and final), counted once per index.
    pub joint_entries: u64,
    pub final_entries: u64,
    /// Disks lost whole, and write-ahead logs lost with the snapshot kept.
    pub disk_wipes: u64,
    pub wal_losses: u64,
    /// Hostile peer messages delivered, and how many the nodes refused.
    pub hostile_sent: u64,
    pub hostile_rejected: u64,
    /// Nodes that lost power with a write in flight (counted in `crashes` too).
    pub power_losses: u64,
    /// Paxos: slots chosen and applied (the highest slot any node applied).
    pub slots_chosen: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.steps += o.steps;
        self.virtual_ns += o.virtual_ns;
        self.ops_ok += o.ops_ok;
        self.ops_fail += o.ops_fail;
        self.ops_info += o.ops_info;
        self.leader_changes += o.leader_changes;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
        self.pauses += o.pauses;
        self.messages += o.messages;
        self.snapshots_taken += o.snapshots_taken;
        self.snapshot_deltas += o.snapshot_deltas;
        self.snapshots_installed += o.snapshots_installed;
        self.seeds_with_install += o.seeds_with_install;
        self.membership_changes += o.membership_changes;
        self.membership_done += o.membership_done;
        self.membership_refused += o.membership_refused;
        self.joint_entries += o.joint_entries;
        self.final_entries += o.final_entries;
        self.disk_wipes += o.disk_wipes;
        self.wal_losses += o.wal_losses;
        self.hostile_sent += o.hostile_sent;
        self.hostile_rejected += o.hostile_rejected;
        self.power_losses += o.power_losses;
        self.slots_chosen += o.slots_chosen;
    }
}
