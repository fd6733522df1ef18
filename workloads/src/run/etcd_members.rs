//! Membership faults on etcd, through its API: remove a member
//! (`/v3/cluster/member/remove`), and later add it back (`/v3/cluster/member/add`).
//!
//! etcd gives a removed member no way back with its old state: a member added again
//! is a new member (a new id) that must start from an empty data directory with
//! `--initial-cluster-state existing`. So a removal confirmed by the leader's member
//! list is followed by killing the member and deleting its data; adding it back
//! starts it afresh, and it catches up from the leader. A member whose removal is
//! not confirmed keeps its data: deleting the state of a member that may still vote
//! would break Raft's assumptions, which is not the fault being tested.

use super::cluster::{Cluster, NodeState};
use super::etcd::{Etcd, MemberError};
use super::http::HttpClient;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Pause between two attempts, so a cluster electing a leader is not flooded.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Failed attempts kept per change; the count still grows past it.
const MAX_KEPT_ERRORS: usize = 8;

/// Members taken out by membership faults and not yet back.
#[derive(Debug, Default)]
pub struct Removed {
    /// A removal of these may have happened (confirmed or not).
    pub pending: BTreeSet<u64>,
    /// Confirmed removed, killed and wiped: waiting to be added and started.
    pub wiped: BTreeSet<u64>,
}

/// What one removal came to.
#[derive(Debug, Default)]
pub struct Removal {
    /// The leader's member list no longer has the member.
    pub confirmed: bool,
    pub errors: Vec<String>,
}

fn keep(errors: &mut Vec<String>, failures: &mut usize, e: String) {
    *failures += 1;
    if errors.len() < MAX_KEPT_ERRORS {
        errors.push(e);
    }
}

/// Where to send membership calls: `preferred` (the leader, when known) unless it is
/// one of `avoid`, else the first running member not in `avoid`.
fn pick(
    cluster: &Cluster,
    preferred: Option<u64>,
    avoid: &BTreeSet<u64>,
) -> Option<(u64, SocketAddr)> {
    let addrs = cluster.addrs();
    if let Some(l) = preferred.filter(|l| !avoid.contains(l))
        && cluster.state(l) == Some(NodeState::Running)
        && let Some(&a) = addrs.get(&l)
    {
        return Some((l, a));
    }
    addrs
        .iter()
        .find(|(id, _)| !avoid.contains(id) && cluster.state(**id) == Some(NodeState::Running))
        .map(|(&id, &a)| (id, a))
}

/// Removes `victim`, retrying until the leader's list confirms it or `deadline`.
/// `leader` says who leads now (the nemesis's view of the cluster).
pub async fn remove_until(
    cluster: &Cluster,
    http: &HttpClient,
    etcd: &Etcd,
    victim: u64,
    leader: impl Fn() -> Option<u64>,
    deadline: Instant,
) -> Removal {
    let mut r = Removal::default();
    let mut failures = 0;
    let avoid: BTreeSet<u64> = [victim].into();
    loop {
        if let Some((at, addr)) = pick(cluster, leader(), &avoid) {
            match etcd.remove_member(http, addr, victim).await {
                Ok(()) => {}
                Err(MemberError::NotApplied(e) | MemberError::Unknown(e)) => {
                    keep(&mut r.errors, &mut failures, format!("n{at}: {e}"));
                }
            }
            // Whatever the call said, the leader's list decides.
            if let Some(list) = etcd.member_list(http, addr).await
                && leader() == Some(at)
                && !list.iter().any(|(_, id)| *id == victim)
            {
                r.confirmed = true;
                return r;
            }
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            if failures > r.errors.len() {
                r.errors
                    .push(format!("... {failures} failed attempts in all"));
            }
            return r;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// After a confirmed removal: the member is killed and its data deleted, and any
/// later start joins the running cluster as a new member.
pub fn wipe(cluster: &Cluster, removed: &mut Removed, victim: u64) -> anyhow::Result<()> {
    cluster.kill(victim)?;
    cluster.delete_data(victim)?;
    cluster.mark_joining(victim);
    removed.wiped.insert(victim);
    Ok(())
}

/// Brings every removed member back: one whose removal the leader's list shows is
/// wiped (if not yet), added, and started afresh; one the list still has was never
/// removed and is left alone. Retries until every member is back or `deadline`.
/// Returns the notes of what went wrong, as an error when not everyone is back.
pub async fn restore(
    cluster: &Cluster,
    http: &HttpClient,
    etcd: &Etcd,
    removed: &mut Removed,
    leader: impl Fn() -> Option<u64>,
    deadline: Instant,
) -> Result<Vec<String>, Vec<String>> {
    let mut notes = Vec::new();
    let mut failures = 0;
    loop {
        let pending: Vec<u64> = removed.pending.iter().copied().collect();
        if pending.is_empty() {
            return Ok(notes);
        }
        let avoid: BTreeSet<u64> = removed.pending.clone();
        if let Some((at, addr)) = pick(cluster, leader(), &avoid)
            && leader() == Some(at)
            && let Some(list) = etcd.member_list(http, addr).await
        {
            for id in pending {
                let listed = list.iter().any(|(_, m)| *m == id);
                if listed && !removed.wiped.contains(&id) {
                    // Never removed after all (the call's outcome was unknown).
                    removed.pending.remove(&id);
                    continue;
                }
                if !listed {
                    if !removed.wiped.contains(&id)
                        && let Err(e) = wipe(cluster, removed, id)
                    {
                        keep(&mut notes, &mut failures, format!("n{id}: {e:#}"));
                        continue;
                    }
                    match etcd.add_member(http, addr, id).await {
                        Ok(()) => {}
                        Err(MemberError::NotApplied(e) | MemberError::Unknown(e)) => {
                            // An unknown outcome shows in the next member list.
                            keep(&mut notes, &mut failures, format!("n{at}: {e}"));
                            continue;
                        }
                    }
                }
                // Listed again, with an empty data directory: start it (after
                // reaping a start that failed while it was not yet listed).
                match cluster.kill(id).and_then(|()| cluster.restart(id)) {
                    Ok(()) => {
                        removed.wiped.remove(&id);
                        removed.pending.remove(&id);
                    }
                    Err(e) => keep(&mut notes, &mut failures, format!("starting n{id}: {e:#}")),
                }
            }
            if removed.pending.is_empty() {
                return Ok(notes);
            }
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            if failures > notes.len() {
                notes.push(format!("... {failures} failed attempts in all"));
            }
            return Err(notes);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}
