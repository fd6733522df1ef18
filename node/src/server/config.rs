//! The node's command line and the validated configuration built from it.
//!
//! Parsing is separate from validation so that a bad flag produces one clear message
//! (which flag, what was wrong) before anything binds a socket or opens the data
//! directory.

use crate::consensus::EngineKind;
use crate::raft::types::NodeId;
use crate::replica::{Mutant, Mutants};
use clap::Parser;
use clap::builder::PossibleValue;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Command line of the `node` binary (docs/design.md, "Node command line").
#[derive(Parser, Debug, Clone)]
#[command(name = "node", version, about = "A Raft key-value server over HTTP")]
pub struct Args {
    /// This node's id (a positive integer, one of the ids in --peers).
    #[arg(long)]
    pub id: NodeId,
    /// Address to serve clients, peers and admin on.
    #[arg(long, required_unless_present = "listen_inherited")]
    pub listen: Option<SocketAddr>,
    /// Serve on the listening socket the parent passed at fd 3 (`LISTEN_FDS=1`, the
    /// socket-activation protocol systemd uses) instead of binding --listen.
    #[arg(long, conflicts_with = "listen")]
    pub listen_inherited: bool,
    /// Every member as ID=HOST:PORT, comma separated, this node included.
    #[arg(long)]
    pub peers: String,
    /// Directory for the log, hard state and snapshots; reused on restart.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Shared secret required on /raft and /admin (header x-cluster-token).
    #[arg(long)]
    pub cluster_token: Option<String>,
    /// The consensus engine. Recorded in the data directory on first start; a
    /// restart with another engine is refused.
    #[arg(long, value_name = "ENGINE", default_value_t = EngineKind::Raft)]
    pub consensus: EngineKind,
    /// Switch on one known bug (docs/design.md, "Mutants").
    #[arg(long = "unsafe", value_name = "MUTANT")]
    pub unsafe_mutant: Option<Mutant>,
    /// Length of one logical clock tick.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Election timeout range in ticks, drawn uniformly in [min, max).
    #[arg(long, default_value_t = 15)]
    pub election_ticks_min: u32,
    #[arg(long, default_value_t = 30)]
    pub election_ticks_max: u32,
    /// Leader heartbeat interval in ticks.
    #[arg(long, default_value_t = 3)]
    pub heartbeat_ticks: u32,
    /// Seed of the replica's random choices (mixed with --id so nodes differ).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long a client request may wait for consensus before a 504.
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// Maximum simultaneous HTTP connections (clients, peers and admin together).
    /// When all are taken, the client connection that has waited longest for
    /// request bytes is closed to make room; peer connections never are.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// A request head, and then its body, must each arrive within this long (a
    /// slow body gets 408); an idle keep-alive connection is closed after it.
    #[arg(long, default_value_t = 10_000)]
    pub read_timeout_ms: u64,
    /// Maximum client request body size in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Tokio worker threads (fsyncs run on a separate blocking thread).
    #[arg(long, default_value_t = 2)]
    pub worker_threads: usize,
    /// Take a snapshot (and compact the log) once per this many entries applied; 0
    /// disables automatic snapshots (POST /admin/snapshot still works). Each node
    /// snapshots at a phase of the period set by its id, so the nodes of a cluster
    /// do not all snapshot at once. The default is etcd's `--snapshot-count` default.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Size at which a WAL segment is closed and a new one started; segments wholly
    /// covered by a snapshot are deleted, so this also sets how finely the WAL shrinks.
    #[arg(long, default_value_t = 64 << 20)]
    pub wal_segment_bytes: u64,
    /// Nice value of the thread that serializes and writes snapshots (0 = as the
    /// rest of the node; 19 = lowest), so a snapshot yields the CPU to client work.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub snapshot_nice: i32,
    /// Most MiB per second a snapshot is serialized and written at; 0 for no limit.
    /// Bounds how much of the disk's bandwidth a snapshot takes from the log's fsyncs.
    #[arg(long, default_value_t = 32)]
    pub snapshot_rate_mib: u64,
    /// KiB of a snapshot file written between two starts of its writeback (0: one
    /// fsync at the end only), so the log's fsyncs never queue behind a large pile of
    /// the snapshot's dirty pages.
    #[arg(long, default_value_t = 4096)]
    pub snapshot_sync_kib: u64,
    /// KiB per chunk of a snapshot streamed to a follower (up to 16384); the
    /// follower holds one chunk of it in memory at a time.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=16384))]
    pub snapshot_chunk_kib: u64,
    /// Shut down when the process that started this node exits (checked twice a
    /// second), so a harness that is killed outright leaves no node behind.
    #[arg(long)]
    pub exit_with_parent: bool,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Where to reach every member, this node included.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data_dir: PathBuf,
    pub cluster_token: Option<String>,
    pub consensus: EngineKind,
    pub mutants: Mutants,
    /// `--unsafe no-fsync`: acknowledge writes before they are durable.
    pub no_fsync: bool,
    pub tick: Duration,
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub heartbeat_ticks: u32,
    pub seed: u64,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub read_timeout: Duration,
    pub max_body_bytes: usize,
    pub snapshot_every: u64,
    pub wal_segment_bytes: u64,
    /// Nice value of the background (snapshot) thread.
    pub snapshot_nice: i32,
    /// How snapshots are serialized and written.
    pub snapshot_pace: crate::storage::Pace,
    /// Bytes per chunk of a streamed snapshot.
    pub snapshot_chunk_bytes: usize,
    /// The incarnation this process takes if its data directory holds no identity:
    /// drawn from the operating system's randomness, never from `--seed`, so a node
    /// restarted on a wiped directory with the same command line is a new one.
    pub incarnation: u64,
}

/// `--unsafe` takes the mutants' names: clap checks them, lists them in `--help`
/// and names the valid ones when one is wrong.
impl clap::ValueEnum for Mutant {
    fn value_variants<'a>() -> &'a [Self] {
        &Mutant::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// `--consensus` takes the engines' names.
impl clap::ValueEnum for EngineKind {
    fn value_variants<'a>() -> &'a [Self] {
        &EngineKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

/// Why a command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--peers: entry {0:?} is not ID=HOST:PORT")]
    PeerSyntax(String),
    #[error("--peers: id {0} appears twice")]
    DuplicatePeer(NodeId),
    #[error("--id must be positive")]
    ZeroId,
    #[error("--peers does not list this node's id {0}")]
    SelfMissing(NodeId),
    #[error("no address to listen on: give --listen or --listen-inherited")]
    NoListen,
    #[error("--listen {0} is not a loopback address; set --cluster-token to serve beyond loopback")]
    NonLoopbackWithoutToken(SocketAddr),
    #[error("{0}")]
    Range(String),
}

/// Parses `1=127.0.0.1:7001,2=...` into a map. Host names are not resolved: peers
/// are addressed by IP so that start-up never waits on DNS.
pub fn parse_peers(spec: &str) -> Result<BTreeMap<NodeId, SocketAddr>, ConfigError> {
    let mut peers = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| ConfigError::PeerSyntax(part.to_string()))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| ConfigError::PeerSyntax(part.to_string()))?;
        let addr: SocketAddr = addr
            .trim()
            .parse()
            .map_err(|_| ConfigError::PeerSyntax(part.to_string()))?;
        if id == 0 {
            return Err(ConfigError::PeerSyntax(part.to_string()));
        }
        if peers.insert(id, addr).is_some() {
            return Err(ConfigError::DuplicatePeer(id));
        }
    }
    if peers.is_empty() {
        return Err(ConfigError::PeerSyntax(spec.to_string()));
    }
    Ok(peers)
}

impl NodeConfig {
    /// Validates parsed arguments.
    pub fn from_args(args: Args) -> Result<NodeConfig, ConfigError> {
        if args.id == 0 {
            return Err(ConfigError::ZeroId);
        }
        let peers = parse_peers(&args.peers)?;
        if !peers.contains_key(&args.id) {
            return Err(ConfigError::SelfMissing(args.id));
        }
        let token = args.cluster_token.filter(|t| !t.is_empty());
        let listen = args.listen.ok_or(ConfigError::NoListen)?;
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(ConfigError::NonLoopbackWithoutToken(listen));
        }
        if let Some(m) = args.unsafe_mutant {
            m.check_engine(args.consensus).map_err(ConfigError::Range)?;
        }
        let mutants = args
            .unsafe_mutant
            .map_or(Mutants::default(), Mutant::mutants);
        let no_fsync = args.unsafe_mutant == Some(Mutant::NoFsync);
        if args.wal_segment_bytes < 4096 {
            return Err(ConfigError::Range(
                "--wal-segment-bytes must be at least 4096".into(),
            ));
        }
        if args.tick_ms == 0 || args.tick_ms > 10_000 {
            return Err(ConfigError::Range("--tick-ms must be in 1..=10000".into()));
        }
        if args.election_ticks_min == 0 || args.election_ticks_max <= args.election_ticks_min {
            return Err(ConfigError::Range(
                "--election-ticks-min must be positive and below --election-ticks-max".into(),
            ));
        }
        if args.heartbeat_ticks == 0 || args.heartbeat_ticks >= args.election_ticks_min {
            return Err(ConfigError::Range(
                "--heartbeat-ticks must be positive and below --election-ticks-min".into(),
            ));
        }
        if args.request_timeout_ms == 0
            || args.read_timeout_ms == 0
            || args.max_connections == 0
            || args.max_body_bytes == 0
        {
            return Err(ConfigError::Range(
                "--request-timeout-ms, --read-timeout-ms, --max-connections and \
                 --max-body-bytes must be positive"
                    .into(),
            ));
        }
        // Mixing the id in keeps nodes started with one shared --seed from drawing
        // identical election timeouts (which would split every vote).
        let seed = args
            .seed
            .unwrap_or(0x5EED)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ args.id;
        Ok(NodeConfig {
            id: args.id,
            listen,
            peers,
            data_dir: args.data_dir,
            cluster_token: token,
            consensus: args.consensus,
            mutants,
            no_fsync,
            tick: Duration::from_millis(args.tick_ms),
            election_ticks_min: args.election_ticks_min,
            election_ticks_max: args.election_ticks_max,
            heartbeat_ticks: args.heartbeat_ticks,
            seed,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            max_connections: args.max_connections,
            read_timeout: Duration::from_millis(args.read_timeout_ms),
            max_body_bytes: args.max_body_bytes,
            snapshot_every: args.snapshot_every,
            wal_segment_bytes: args.wal_segment_bytes,
            snapshot_nice: args.snapshot_nice,
            snapshot_pace: crate::storage::Pace {
                bytes_per_s: args.snapshot_rate_mib.saturating_mul(1 << 20),
                sync_every_bytes: args.snapshot_sync_kib.saturating_mul(1 << 10),
                ..crate::storage::Pace::default()
            },
            snapshot_chunk_bytes: (args.snapshot_chunk_kib as usize) << 10,
            incarnation: rand::random::<u64>().max(1),
        })
    }

    /// The replica's configuration.
    pub fn replica_config(&self) -> crate::replica::Config {
        crate::replica::Config {
            raft: crate::raft::RaftConfig {
                id: self.id,
                peers: self.peers.keys().copied().collect(),
                election_ticks_min: self.election_ticks_min,
                election_ticks_max: self.election_ticks_max,
                heartbeat_ticks: self.heartbeat_ticks,
                max_entries_per_msg: 512,
                max_inflight_msgs: 256,
                pre_vote: true,
                check_quorum: true,
                seed: self.seed,
                incarnation: self.incarnation,
                discover: true,
                mutants: self.mutants,
            },
            snapshot_every: self.snapshot_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid three-node command line with `extra` flags replacing or adding to it.
    fn args(extra: &[&str]) -> Result<NodeConfig, String> {
        let mut flags: Vec<(String, String)> = [
            ("--id", "1"),
            ("--listen", "127.0.0.1:7001"),
            (
                "--peers",
                "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
            ),
            ("--data-dir", "/tmp/x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for pair in extra.chunks(2) {
            let (k, v) = (pair[0].to_string(), pair[1].to_string());
            match flags.iter_mut().find(|(f, _)| *f == k) {
                Some(slot) => slot.1 = v,
                None => flags.push((k, v)),
            }
        }
        let mut argv = vec!["node".to_string()];
        for (k, v) in flags {
            argv.push(k);
            argv.push(v);
        }
        let a = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        NodeConfig::from_args(a).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_a_three_node_command_line() {
        let c = args(&[]).expect("valid");
        assert_eq!(c.peers.len(), 3);
        assert_eq!(c.peers[&2].port(), 7002);
        assert!(!c.no_fsync);
        assert_eq!(c.replica_config().raft.peers, vec![1, 2, 3]);
    }

    #[test]
    fn refuses_non_loopback_without_token() {
        let e = args(&["--listen", "0.0.0.0:7001"]);
        assert!(e.is_err());
        let ok = args(&["--listen", "0.0.0.0:7001", "--cluster-token", "s"]);
        assert!(ok.is_ok());
    }

    #[test]
    fn mutants_route_to_storage_or_replica() {
        let c = args(&["--unsafe", "no-fsync"]).expect("valid");
        assert!(c.no_fsync);
        assert_eq!(c.mutants, Mutants::default());
        let c = args(&["--unsafe", "stale-read"]).expect("valid");
        assert!(c.mutants.stale_read && !c.no_fsync);
        let e = args(&["--unsafe", "paxos-forget-promise"]).unwrap_err();
        assert!(e.to_string().contains("vote-any-log"), "{e}");
        let c = args(&[
            "--unsafe",
            "paxos-forget-promise",
            "--consensus",
            "basic-paxos",
        ])
        .expect("a Paxos mutant under a Paxos engine");
        assert!(c.mutants.paxos_forget_promise);
        let e = args(&["--unsafe", "bogus"]).unwrap_err();
        assert!(e.contains("bogus") && e.contains("possible values"), "{e}");
        for m in Mutant::ALL {
            assert!(e.contains(m.name()), "{e}");
            let engine = EngineKind::ALL
                .into_iter()
                .find(|&k| m.applies_to(k))
                .expect("every mutant exists under some engine");
            let c = args(&["--unsafe", m.name(), "--consensus", engine.as_str()]).expect("valid");
            assert_eq!((c.mutants, c.no_fsync), (m.mutants(), m == Mutant::NoFsync));
        }
    }

    #[test]
    fn bad_peer_lists_are_explained() {
        assert_eq!(
            parse_peers("1=127.0.0.1:1,x"),
            Err(ConfigError::PeerSyntax("x".into()))
        );
        assert_eq!(
            parse_peers("1=127.0.0.1:1,1=127.0.0.1:2"),
            Err(ConfigError::DuplicatePeer(1))
        );
        assert!(args(&["--id", "4"]).unwrap_err().contains("id 4"));
    }

    #[test]
    fn nodes_sharing_a_seed_draw_differently() {
        let a = args(&["--seed", "7"]).expect("valid");
        let b = args(&["--seed", "7", "--id", "2"]).expect("valid");
        assert_ne!(a.seed, b.seed);
    }
}
