//! Command-line values that several commands share, parsed by clap through
//! `FromStr`: a range of seeds (`sim --seeds`, `suite --sim-seeds`) and a set of
//! fault kinds (`run --nemesis`, `sim --nemesis`), whose words are the names and
//! aliases of a `clap::ValueEnum`; and the consensus engine (`--consensus`).

use clap::ValueEnum;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use node::consensus::EngineKind;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// Seeds `first..=last`: `A..B` (both included; `A..=B` too) or one number `N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    pub last: u64,
}

impl SeedRange {
    /// Most seeds one invocation may run.
    pub const MAX_SEEDS: u64 = 10_000_000;
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SeedRange, String> {
        let (a, b) = match s.split_once("..") {
            Some((a, b)) => (a.trim(), b.strip_prefix('=').unwrap_or(b).trim()),
            None => (s.trim(), s.trim()),
        };
        let number = |t: &str| {
            t.parse::<u64>()
                .map_err(|_| format!("{t:?} is not a number (expected A..B or N)"))
        };
        let (first, last) = (number(a)?, number(b)?);
        if first > last {
            return Err("the range is empty".into());
        }
        if last - first >= SeedRange::MAX_SEEDS {
            return Err(format!("more than {} seeds", SeedRange::MAX_SEEDS));
        }
        Ok(SeedRange { first, last })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// Fault kinds to inject: a comma list of the kinds' names (or their aliases), `all`
/// (every kind) or `none`. Spaces around the names and empty items are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultSet<K: Ord>(pub BTreeSet<K>);

impl<K: ValueEnum + Ord + Copy> FaultSet<K> {
    pub fn all() -> FaultSet<K> {
        FaultSet(K::value_variants().iter().copied().collect())
    }

    pub fn contains(&self, kind: K) -> bool {
        self.0.contains(&kind)
    }

    /// The kinds, in their order.
    pub fn kinds(&self) -> Vec<K> {
        self.0.iter().copied().collect()
    }
}

impl<K: Ord, const N: usize> From<[K; N]> for FaultSet<K> {
    fn from(kinds: [K; N]) -> FaultSet<K> {
        FaultSet(kinds.into_iter().collect())
    }
}

/// The kinds' names, as `--help` and error messages list them.
fn names<K: ValueEnum>() -> Vec<String> {
    K::value_variants()
        .iter()
        .filter_map(|k| k.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect()
}

impl<K: ValueEnum + Ord + Copy> FromStr for FaultSet<K> {
    type Err = String;

    fn from_str(s: &str) -> Result<FaultSet<K>, String> {
        let mut set = BTreeSet::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => set.extend(K::value_variants().iter().copied()),
                "none" => {}
                _ => {
                    let kind = K::from_str(word, false).map_err(|_| {
                        format!(
                            "unknown fault {word:?} (expected a comma list of {}; or all, or none)",
                            names::<K>().join(", ")
                        )
                    })?;
                    set.insert(kind);
                }
            }
        }
        Ok(FaultSet(set))
    }
}

/// `none`, `all`, or the kinds' names (`partition,kill`): parses back to the same set.
impl<K: ValueEnum + Ord + Copy> fmt::Display for FaultSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        if *self == FaultSet::all() {
            return f.write_str("all");
        }
        let words: Vec<String> = self
            .0
            .iter()
            .filter_map(|k| k.to_possible_value())
            .map(|v| v.get_name().to_string())
            .collect();
        f.write_str(&words.join(","))
    }
}

/// `--consensus`: the engine the cluster runs. One definition for every command
/// that takes it (flatten it with `#[command(flatten)]`).
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusArg {
    /// The consensus engine the replicas run.
    #[arg(
        long = "consensus",
        value_name = "ENGINE",
        default_value = "raft",
        value_parser = engine_parser()
    )]
    pub engine: EngineKind,
}

/// Parses an engine name; clap lists the names in `--help` and in its error.
fn engine_parser() -> impl TypedValueParser<Value = EngineKind> {
    PossibleValuesParser::new(EngineKind::ALL.map(EngineKind::as_str))
        .try_map(|s| s.parse::<EngineKind>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
    enum Kind {
        #[value(alias = "partitions")]
        Partition,
        #[value(aliases = ["kills", "crash"])]
        Kill,
        Pause,
    }

    #[test]
    fn seed_ranges() {
        let r = |s: &str| s.parse::<SeedRange>();
        assert_eq!(
            r("1..100"),
            Ok(SeedRange {
                first: 1,
                last: 100
            })
        );
        assert_eq!(r(" 3 ..= 5"), Ok(SeedRange { first: 3, last: 5 }));
        assert_eq!(
            r("42"),
            Ok(SeedRange {
                first: 42,
                last: 42
            })
        );
        assert_eq!(r("42").map(|s| s.to_string()), Ok("42".into()));
        assert_eq!(r("1..=9").map(|s| s.to_string()), Ok("1..9".into()));
        for (bad, why) in [
            ("5..2", "empty"),
            ("x..2", "not a number"),
            ("1..", "not a number"),
            ("-1", "not a number"),
            ("0..10000000", "more than"),
        ] {
            let e = r(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(r("0..9999999").is_ok());
    }

    #[test]
    fn fault_sets() {
        let f = |s: &str| s.parse::<FaultSet<Kind>>();
        assert_eq!(f("none"), Ok(FaultSet(BTreeSet::new())));
        assert_eq!(f(""), Ok(FaultSet(BTreeSet::new())));
        assert_eq!(f("all"), Ok(FaultSet::all()));
        assert_eq!(
            f("kills, partitions,"),
            Ok(FaultSet::from([Kind::Kill, Kind::Partition]))
        );
        assert_eq!(f("crash,none"), Ok(FaultSet::from([Kind::Kill])));
        let e = f("pause,flood").unwrap_err();
        assert!(
            e.contains("\"flood\"") && e.contains("partition, kill, pause"),
            "{e}"
        );
        for s in ["none", "all", "pause", "kill,pause"] {
            let set = f(s).unwrap();
            assert_eq!(set.to_string(), s);
            assert_eq!(f(&set.to_string()), Ok(set));
        }
        assert_eq!(f("pause,kill").unwrap().kinds(), [Kind::Kill, Kind::Pause]);
    }
}
