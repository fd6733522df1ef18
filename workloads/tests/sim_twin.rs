//! The simulator against its small reference Raft (`sim::twin`): a correct run passes,
//! runs replay exactly, and the invariants catch the known bugs.

use workloads::args::FaultSet;
use workloads::faults::Fault;
use workloads::sim::twin::Twin;
use workloads::sim::{Options, run_range_with};

#[test]
fn twin_seeds_pass() {
    // The reference Raft has no membership changes, no identity to lose and no
    // validation of peer messages: it runs under the classic faults only.
    let o = Options {
        nemesis: FaultSet::from([Fault::Partition, Fault::Kill, Fault::Pause, Fault::Loss]),
        ..Options::default()
    };
    let r = run_range_with::<Twin>(1, 40, &o, 2);
    let msgs: Vec<String> = r
        .failures
        .iter()
        .map(|(s, v)| format!("seed {s}: {} at step {}", v.message, v.step))
        .collect();
    assert!(msgs.is_empty(), "{msgs:#?}");
    assert!(r.stats.leader_changes > 40);
    assert!(r.stats.crashes > 0 && r.stats.partitions > 0);
}
