//! Joining by discovery: first boot, a late original member, and a node that lost
//! its state, which comes back as a new incarnation that counts for nothing until
//! the leader re-admits it.

use super::*;

/// Nodes 1..=n joining by discovery, node i with incarnation 100 + i.
fn discovering(n: u64) -> Net {
    Net::new(n, |c| {
        c.discover = true;
        c.incarnation = 100 + c.id;
    })
}

fn tick_all(net: &mut Net, times: usize) {
    for _ in 0..times {
        let ids: Vec<NodeId> = net.nodes.keys().copied().collect();
        for id in ids {
            net.with(id, |n| n.tick());
        }
        net.stabilize();
    }
}

fn leader(net: &Net) -> Option<NodeId> {
    net.nodes
        .iter()
        .find(|(_, n)| n.role() == Role::Leader)
        .map(|(id, _)| *id)
}

/// A node whose only peer is itself has no one to ask: it bootstraps at once and
/// leads.
#[test]
fn a_blank_single_node_bootstraps_alone_and_leads() {
    let mut net = discovering(1);
    tick_all(&mut net, 30);
    assert_ne!(net.node(1).identity().cluster, 0);
    assert_eq!(net.node(1).identity().bootstrap.admitted(1), 101);
    assert_eq!(leader(&net), Some(1));
}

/// The lowest id bootstraps only once every peer answered, in reply to its own
/// question, that it has not joined; everyone then joins that cluster.
#[test]
fn blank_nodes_bootstrap_once_the_lowest_id_has_heard_every_peer() {
    let mut net = discovering(3);
    net.cut = vec![3];
    tick_all(&mut net, 30);
    for id in [1, 2] {
        assert_eq!(
            net.node(id).identity().cluster,
            0,
            "n{id} joined without n3"
        );
        assert_eq!(net.node(id).role(), Role::Learner);
    }
    assert_eq!(leader(&net), None);
    net.cut.clear();
    tick_all(&mut net, 60);
    let cluster = net.node(1).identity().cluster;
    assert_ne!(cluster, 0);
    for id in [1, 2, 3] {
        let identity = net.node(id).identity();
        assert_eq!(identity.cluster, cluster);
        assert_eq!(identity.incarnation, 100 + id);
        assert_eq!(identity.bootstrap.admitted(id), 100 + id);
    }
    assert!(leader(&net).is_some());
}

/// A node whose state is lost and that starts again blank (same id, same peers)
/// joins as a new incarnation: no configuration names it, so its vote does not
/// count. It cannot help a candidate missing committed entries, and once it has
/// caught up the leader re-admits it by a joint change naming the new incarnation.
#[test]
fn a_node_that_lost_its_state_counts_for_nothing_until_it_is_re_admitted() {
    let mut net = discovering(3);
    tick_all(&mut net, 60);
    let l = leader(&net).expect("a leader");
    let (a, b) = {
        let others: Vec<NodeId> = (1..=3).filter(|&i| i != l).collect();
        (others[0], others[1])
    };
    // Node `b` loses its state: a blank node with the same id and a new incarnation.
    let mut c = cfg(b, 3);
    c.discover = true;
    c.incarnation = 999;
    net.nodes.insert(
        b,
        Raft::new(c, HardState::default(), None, None, Vec::new()),
    );
    // The leader is cut off; `a` campaigns and `b` would grant it its vote, but a
    // vote of incarnation 999 counts nowhere: no leader.
    net.cut = vec![l];
    tick_all(&mut net, 60);
    assert_eq!(net.node(b).identity().incarnation, 999);
    assert_ne!(net.node(b).identity().cluster, 0, "n{b} did not join");
    assert_eq!(net.node(b).role(), Role::Learner);
    assert_eq!(
        leader(&net),
        None,
        "n{a} won with the vote of a node that lost its state"
    );
    // The leader comes back, brings `b` up to date and re-admits it.
    net.cut.clear();
    tick_all(&mut net, 60);
    let l = leader(&net).expect("a leader again");
    let m = net.node(l).membership().clone();
    assert_eq!(m.voters_old, None);
    assert_eq!(m.admitted(b), 999);
    assert_eq!(net.node(b).role(), Role::Follower);
}
