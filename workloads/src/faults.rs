//! The one fault vocabulary of `--nemesis`, for `workloads sim` and `workloads run`
//! (a [`FaultSet`] of [`Fault`]s; docs/design.md, "Faults").
//!
//! | name | also accepted | sim | run |
//! |---|---|---|---|
//! | `partition` | `partitions` | network cuts, symmetric or one-way | grudges on the link proxies |
//! | `kill` | `crash`, `kills` | the node loses what it had not fsynced, restarts later | SIGKILL, restart later |
//! | `pause` | `pauses` | the node stops handling events, resumes later | SIGSTOP, later SIGCONT |
//! | `membership` | `member` | joint changes through the leader | remove a voter, add it back |
//! | `wipe` | `disk` | a node's disk (or its write-ahead log) is lost | kill, delete the data dir, restart |
//! | `loss` | | message loss, duplication and delay | (simulator only) |
//! | `hostile` | | well-formed but impossible peer messages | (simulator only) |
//! | `power-loss` | `power` | a node loses power while a write is in flight: the write is lost | (simulator only) |
//!
//! `all` is every kind the side can produce: all eight in the simulator, the first
//! five in a real run (and, on etcd, without `wipe`); `none` is no fault. Naming a
//! simulator-only kind in a real run is an error that says so (a killed process
//! keeps what it wrote in the page cache, so a real run cannot lose power).
//!
//! Without `--nemesis`, the simulator injects [`sim_default`]: for Raft the first
//! seven kinds (power loss is opt-in there, so every recorded Raft seed keeps its
//! schedule), for the Paxos engines every kind that applies to them.

use crate::args::FaultSet;
use node::consensus::EngineKind;

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Fault {
    #[value(alias = "partitions")]
    Partition,
    #[value(aliases = ["crash", "kills"])]
    Kill,
    #[value(alias = "pauses")]
    Pause,
    #[value(alias = "member")]
    Membership,
    #[value(alias = "disk")]
    Wipe,
    Loss,
    Hostile,
    #[value(alias = "power")]
    PowerLoss,
}

impl Fault {
    /// Every kind, in the order names and run folders list them.
    pub const ALL: [Fault; 8] = [
        Fault::Partition,
        Fault::Kill,
        Fault::Pause,
        Fault::Membership,
        Fault::Wipe,
        Fault::Loss,
        Fault::Hostile,
        Fault::PowerLoss,
    ];

    /// The name `--nemesis` takes, run folders and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Membership => "membership",
            Fault::Wipe => "wipe",
            Fault::Loss => "loss",
            Fault::Hostile => "hostile",
            Fault::PowerLoss => "power-loss",
        }
    }

    /// Whether a real run can produce it (the simulator produces every kind).
    pub fn in_real_runs(self) -> bool {
        !matches!(self, Fault::Loss | Fault::Hostile | Fault::PowerLoss)
    }

    /// Why the simulator leaves this kind out under `engine`, when it does. Paxos
    /// membership is static; a Paxos acceptor that loses its disk forgets its
    /// promises and has no identity rule to keep it from voting as the node it was.
    pub fn sim_blind_spot(self, engine: EngineKind) -> Option<&'static str> {
        if engine == EngineKind::Raft {
            return None;
        }
        match self {
            Fault::Membership => Some("membership is static under Paxos"),
            Fault::Wipe => Some(
                "a Paxos acceptor that loses its disk forgets its promises, and no identity \
                 rule keeps it from voting as the node it was",
            ),
            _ => None,
        }
    }
}

/// The kinds `workloads sim` injects under `engine` when `--nemesis` is not given:
/// for Raft the seven kinds it always had (power loss is opt-in, so every recorded
/// seed replays as it did), for Paxos every kind that applies but `hostile`, power
/// loss included (Paxos hostile messages are opt-in, for the same reason).
pub fn sim_default(engine: EngineKind) -> FaultSet<Fault> {
    FaultSet(
        Fault::ALL
            .into_iter()
            .filter(|f| match engine {
                EngineKind::Raft => *f != Fault::PowerLoss,
                _ => f.sim_blind_spot(engine).is_none() && *f != Fault::Hostile,
            })
            .collect(),
    )
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds a real run injects for `--nemesis`: `all` is every kind a real run can
/// produce; a simulator-only kind named on its own is an error that says so.
pub fn for_real_run(set: &FaultSet<Fault>) -> Result<Vec<Fault>, String> {
    if *set == FaultSet::all() {
        return Ok(Fault::ALL
            .into_iter()
            .filter(|f| f.in_real_runs())
            .collect());
    }
    match set.kinds().into_iter().find(|f| !f.in_real_runs()) {
        Some(f) => Err(format!(
            "--nemesis {f}: only the simulator can inject {} (workloads sim --nemesis {f}); \
             a real run takes partition, kill, pause, membership, wipe, all or none",
            match f {
                Fault::Loss => "message loss",
                Fault::PowerLoss => "power loss during a write",
                _ => "malformed peer messages",
            }
        )),
        None => Ok(set.kinds()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FaultSet<Fault>, String> {
        s.parse()
    }

    #[test]
    fn names_aliases_all_and_none() {
        let only = |fs: &[Fault]| Ok(FaultSet(fs.iter().copied().collect()));
        assert_eq!(parse("none"), only(&[]));
        assert_eq!(parse("all"), only(&Fault::ALL));
        assert_eq!(
            parse("kill,partition"),
            only(&[Fault::Partition, Fault::Kill])
        );
        assert_eq!(parse("crash, disk"), only(&[Fault::Kill, Fault::Wipe]));
        assert_eq!(
            parse("partitions,kills,pauses,member"),
            only(&[
                Fault::Partition,
                Fault::Kill,
                Fault::Pause,
                Fault::Membership
            ])
        );
        assert_eq!(parse("loss,hostile"), only(&[Fault::Loss, Fault::Hostile]));
        assert_eq!(parse("power"), only(&[Fault::PowerLoss]));
        let e = parse("flood").unwrap_err();
        assert!(e.contains("\"flood\"") && e.contains("hostile"), "{e}");
        // The names the rest of the program shows are the names `--nemesis` takes.
        for f in Fault::ALL {
            use clap::ValueEnum;
            let name = f.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(name.as_deref(), Some(f.name()));
        }
    }

    #[test]
    fn each_side_knows_what_all_means() {
        assert_eq!(parse("all").expect("all").kinds().len(), 8);
        let real = for_real_run(&parse("all").expect("all")).expect("all");
        assert_eq!(
            real,
            [
                Fault::Partition,
                Fault::Kill,
                Fault::Pause,
                Fault::Membership,
                Fault::Wipe
            ]
        );
        let e = for_real_run(&parse("partition,loss").expect("parses")).unwrap_err();
        assert!(e.contains("message loss") && e.contains("simulator"), "{e}");
        assert!(for_real_run(&parse("hostile").expect("parses")).is_err());
        let e = for_real_run(&parse("power-loss").expect("parses")).unwrap_err();
        assert!(e.contains("power loss") && e.contains("simulator"), "{e}");
        assert_eq!(
            for_real_run(&parse("wipe,kill").expect("parses")),
            Ok(vec![Fault::Kill, Fault::Wipe])
        );
    }

    #[test]
    fn the_simulator_defaults_per_engine() {
        let raft = sim_default(EngineKind::Raft);
        assert_eq!(
            raft,
            parse("partition,kill,pause,membership,wipe,loss,hostile").unwrap()
        );
        for k in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
            assert_eq!(
                sim_default(k),
                parse("partition,kill,pause,loss,power-loss").unwrap()
            );
            assert!(Fault::Membership.sim_blind_spot(k).is_some());
            assert!(Fault::Wipe.sim_blind_spot(k).is_some());
        }
        assert_eq!(Fault::Wipe.sim_blind_spot(EngineKind::Raft), None);
    }

    #[test]
    fn written_back_the_way_it_parses() {
        for s in ["all", "none", "partition,kill,pause", "kill,wipe,loss"] {
            assert_eq!(parse(s).expect(s).to_string(), s);
        }
        assert_eq!(
            parse("crash,partition").expect("ok").to_string(),
            "partition,kill"
        );
    }
}
