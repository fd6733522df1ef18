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
//!
//! `all` is every kind the side can produce: all seven in the simulator, the first
//! five in a real run (and, on etcd, without `wipe`); `none` is no fault. Naming a
//! simulator-only kind in a real run is an error that says so.

use crate::args::FaultSet;

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
}

impl Fault {
    /// Every kind, in the order names and run folders list them.
    pub const ALL: [Fault; 7] = [
        Fault::Partition,
        Fault::Kill,
        Fault::Pause,
        Fault::Membership,
        Fault::Wipe,
        Fault::Loss,
        Fault::Hostile,
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
        }
    }

    /// Whether a real run can produce it (the simulator produces every kind).
    pub fn in_real_runs(self) -> bool {
        !matches!(self, Fault::Loss | Fault::Hostile)
    }
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
        assert_eq!(parse("all").expect("all").kinds().len(), 7);
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
        assert_eq!(
            for_real_run(&parse("wipe,kill").expect("parses")),
            Ok(vec![Fault::Kill, Fault::Wipe])
        );
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
