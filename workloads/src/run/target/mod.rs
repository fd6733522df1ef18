//! Targets: the stores `workloads run` can drive. A target says how to start one
//! member on its own data directory (a command template), which address its peers
//! dial (so the runner's proxies can sit on every member-to-member link), when a
//! member is ready, and which client protocol it speaks. Kill, pause and restart are
//! signals to the member's process and need nothing from the target.
//!
//! Built in: our `node` ([`node()`]) and etcd ([`etcd`]). [`mod@file`] reads the same
//! description from a TOML target file, so a fork of our node or etcd with other
//! flags can be tested without writing Rust.
//!
//! Nothing past the cluster and the client protocol knows which target runs: the
//! generator, recorder, nemesis, checker and report see members by id.

pub mod file;

use anyhow::bail;
use node::replica::Mutant;
use std::path::{Path, PathBuf};

/// The client protocol a target's members speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// This project's node HTTP API (`GET/PUT /kv/{key}`, `POST /kv/{key}/cas`,
    /// `GET /status`).
    Node,
    /// etcd's v3 JSON gateway (`POST /v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`).
    Etcd,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Node => "node",
            Protocol::Etcd => "etcd",
        }
    }
}

/// How members find their peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peers {
    /// Each member is told where to reach each peer (`{initial_cluster}` differs per
    /// member): member `i` is given the runner's proxy `i -> j` as `j`'s address.
    PerLink,
    /// Each member advertises one peer address that every other member dials (etcd).
    /// Every member then runs in a network namespace of its own, where that address
    /// of each peer is the runner's proxy for that one directed link.
    Advertised,
}

/// When a started member counts as up: an HTTP request to its client address that
/// must answer with `status`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    /// `GET` or `POST`.
    pub method: String,
    pub path: String,
    /// A JSON body (POST only).
    pub body: Option<String>,
    pub status: u16,
}

/// One target: everything the cluster needs to run its members.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TargetSpec {
    /// `node`, `etcd`, or the target file's `name`.
    pub name: String,
    /// The program, then its arguments; each may hold placeholders ([`expand`]).
    pub command: Vec<String>,
    /// One member's entry of `{initial_cluster}` (placeholders `{id}`, `{peer_addr}`);
    /// the entries of every member, joined with commas, make the value.
    pub cluster_entry: String,
    pub protocol: Protocol,
    pub peers: Peers,
    /// Peers dial the member's client address (one port serves both).
    pub shared_address: bool,
    /// The member ends itself when the runner dies (`node --exit-with-parent`);
    /// other members are started through `setpriv --pdeathsig KILL` when it exists.
    pub exits_with_parent: bool,
    /// The member takes its client listener from the runner, as fd 3 under the
    /// socket-activation protocol (`LISTEN_FDS=1`, node `--listen-inherited`), instead
    /// of binding `{client_addr}` itself. The runner then holds the port for the
    /// member's whole life (node::server::listen), so no other process can take it
    /// between a kill and the restart. Per-link targets only.
    pub inherits_listener: bool,
    pub ready: Probe,
    /// How long the nemesis isolates a leader at a time: long enough for the rest to
    /// elect another leader and for the old one to notice.
    pub leader_isolation_ms: u64,
    /// The target file this came from, if any.
    pub file: Option<PathBuf>,
}

/// Values of one member's placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberVars {
    pub id: u64,
    pub data_dir: String,
    pub client_addr: String,
    pub peer_addr: String,
    pub initial_cluster: String,
    /// `new` at first start; `existing` for a member added back to a running cluster.
    pub cluster_state: &'static str,
}

/// Placeholders a command template may use.
pub const PLACEHOLDERS: [&str; 6] = [
    "id",
    "data_dir",
    "client_addr",
    "peer_addr",
    "initial_cluster",
    "cluster_state",
];

/// Placeholders a cluster entry may use.
pub const ENTRY_PLACEHOLDERS: [&str; 2] = ["id", "peer_addr"];

/// The placeholder names in a template, or why it is malformed. `{{` and `}}` stand
/// for literal braces.
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                        _ => {
                            return Err(format!(
                                "unclosed or malformed placeholder in {template:?}"
                            ));
                        }
                    }
                }
                out.push(name);
            }
            '}' => {
                return Err(format!(
                    "stray '}}' in {template:?} (write '}}}}' for a brace)"
                ));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Checks that a template only uses `allowed` placeholders.
pub fn check_template(template: &str, allowed: &[&str]) -> Result<(), String> {
    for name in placeholders(template)? {
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "unknown placeholder {{{name}}} in {template:?}; known: {}",
                allowed
                    .iter()
                    .map(|a| format!("{{{a}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// Fills a template's placeholders from `value` (templates are checked beforehand,
/// so an unknown name is left as it was).
pub fn expand(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    name.push(c);
                }
                match value(&name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(&name);
                        out.push('}');
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

impl MemberVars {
    fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "id" => self.id.to_string(),
            "data_dir" => self.data_dir.clone(),
            "client_addr" => self.client_addr.clone(),
            "peer_addr" => self.peer_addr.clone(),
            "initial_cluster" => self.initial_cluster.clone(),
            "cluster_state" => self.cluster_state.to_string(),
            _ => return None,
        })
    }
}

impl TargetSpec {
    /// The member's argument vector, program first.
    pub fn argv(&self, vars: &MemberVars) -> Vec<String> {
        self.command
            .iter()
            .map(|t| expand(t, |n| vars.get(n)))
            .collect()
    }

    /// `{initial_cluster}`: one entry per member `(id, peer address as dialed)`.
    pub fn initial_cluster(&self, entries: &[(u64, String)]) -> String {
        entries
            .iter()
            .map(|(id, addr)| {
                expand(&self.cluster_entry, |n| match n {
                    "id" => Some(id.to_string()),
                    "peer_addr" => Some(addr.clone()),
                    _ => None,
                })
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Checks every template (used for target files and the built-in targets alike).
    pub fn validate(&self) -> Result<(), String> {
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err("the command is empty".to_string());
        }
        for t in &self.command {
            check_template(t, &PLACEHOLDERS)?;
        }
        check_template(&self.cluster_entry, &ENTRY_PLACEHOLDERS)?;
        if self.inherits_listener && self.peers != Peers::PerLink {
            return Err("inherit_listener needs peers = \"per-link\"".to_string());
        }
        if !matches!(self.ready.method.as_str(), "GET" | "POST") {
            return Err(format!(
                "ready.method must be GET or POST, not {:?}",
                self.ready.method
            ));
        }
        if !self.ready.path.starts_with('/') {
            return Err(format!(
                "ready.path must start with '/', not {:?}",
                self.ready.path
            ));
        }
        Ok(())
    }
}

/// Options of the built-in node target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeOptions {
    pub snapshot_every: u64,
    /// `node --consensus`.
    pub consensus: node::consensus::EngineKind,
    pub unsafe_mutant: Option<Mutant>,
}

/// Our node: one address serves clients and peers, `--peers` gives each member its
/// own address for every peer (the runner's proxies), and it ends itself when the
/// runner dies.
pub fn node(bin: &Path, opts: &NodeOptions) -> TargetSpec {
    let mut command: Vec<String> = [
        bin.display()
            .to_string()
            .replace('{', "{{")
            .replace('}', "}}"),
        "--id".into(),
        "{id}".into(),
        "--listen-inherited".into(),
        "--peers".into(),
        "{initial_cluster}".into(),
        "--data-dir".into(),
        "{data_dir}".into(),
        "--exit-with-parent".into(),
        "--snapshot-every".into(),
        opts.snapshot_every.to_string(),
    ]
    .into();
    // Raft is the node's default: a Raft command line stays the one of
    // workloads/targets/node.toml.
    if opts.consensus != node::consensus::EngineKind::Raft {
        command.push("--consensus".into());
        command.push(opts.consensus.to_string());
    }
    if let Some(m) = opts.unsafe_mutant {
        command.push("--unsafe".into());
        command.push(m.name().into());
    }
    TargetSpec {
        name: "node".to_string(),
        command,
        cluster_entry: "{id}={peer_addr}".to_string(),
        protocol: Protocol::Node,
        peers: Peers::PerLink,
        shared_address: true,
        exits_with_parent: true,
        inherits_listener: true,
        ready: Probe {
            method: "GET".into(),
            path: "/status".into(),
            body: None,
            status: 200,
        },
        // Election timeouts of 150-300 ms.
        leader_isolation_ms: 500,
        file: None,
    }
}

/// The flags every etcd member gets: its name, data dir, peer and client URLs (the
/// addresses of its network namespace), the cluster, and timings for a loopback
/// network (a heartbeat of 50 ms, an election timeout of 500 ms; etcd's defaults of
/// 100 and 1000 are meant for real networks). Everything else is etcd's default:
/// fsync on, snapshots every 100,000 entries.
pub fn etcd(bin: &Path) -> TargetSpec {
    let command = [
        &bin.display()
            .to_string()
            .replace('{', "{{")
            .replace('}', "}}"),
        "--name",
        "n{id}",
        "--data-dir",
        "{data_dir}",
        "--listen-peer-urls",
        "http://{peer_addr}",
        "--initial-advertise-peer-urls",
        "http://{peer_addr}",
        "--listen-client-urls",
        "http://{client_addr}",
        "--advertise-client-urls",
        "http://{client_addr}",
        "--initial-cluster",
        "{initial_cluster}",
        "--initial-cluster-state",
        "{cluster_state}",
        "--initial-cluster-token",
        "workloads",
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "500",
        "--logger",
        "zap",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    TargetSpec {
        name: "etcd".to_string(),
        command,
        cluster_entry: "n{id}=http://{peer_addr}".to_string(),
        protocol: Protocol::Etcd,
        peers: Peers::Advertised,
        shared_address: false,
        exits_with_parent: false,
        inherits_listener: false,
        ready: Probe {
            method: "GET".into(),
            path: "/health".into(),
            body: None,
            status: 200,
        },
        // Election timeouts of 500-1000 ms (etcd randomizes over [t, 2t)).
        leader_isolation_ms: 1500,
        file: None,
    }
}

/// What to tell a user without etcd.
pub const ETCD_ADVICE: &str = "install etcd 3.4 or newer: on Debian or Ubuntu `apt-get install -y etcd-server`, \
     or unpack a release tarball (etcd-vX.Y.Z-linux-amd64.tar.gz) and put `etcd` on PATH; \
     or pass its path with --etcd-bin";

/// Finds `etcd`: `explicit` when given, else on PATH. The error carries the advice.
pub fn find_etcd(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--etcd-bin {}: no such file; {ETCD_ADVICE}", p.display());
    }
    match on_path("etcd") {
        Some(p) => Ok(p),
        None => bail!("etcd is not on PATH; {ETCD_ADVICE}"),
    }
}

/// The first executable file called `name` in the directories of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> MemberVars {
        MemberVars {
            id: 2,
            data_dir: "/d/n2".into(),
            client_addr: "127.0.0.12:2379".into(),
            peer_addr: "127.0.0.12:2380".into(),
            initial_cluster: "c".into(),
            cluster_state: "new",
        }
    }

    #[test]
    fn templates_expand_and_braces_escape() {
        let v = vars();
        assert_eq!(
            expand("--x={data_dir}/{{lit}}", |n| v.get(n)),
            "--x=/d/n2/{lit}"
        );
        assert_eq!(
            placeholders("a{id}b{peer_addr}").expect("ok"),
            ["id", "peer_addr"]
        );
        assert!(placeholders("a{id").is_err());
        assert!(placeholders("a}b").is_err());
        assert!(check_template("{nope}", &PLACEHOLDERS).is_err());
        assert!(check_template("{cluster_state}", &PLACEHOLDERS).is_ok());
    }

    #[test]
    fn the_built_in_targets_are_valid_and_expand() {
        let n = node(Path::new("/bin/node"), &NodeOptions::default());
        n.validate().expect("node target");
        let e = etcd(Path::new("/usr/bin/etcd"));
        e.validate().expect("etcd target");
        let cluster =
            e.initial_cluster(&[(1, "127.0.0.11:2380".into()), (2, "127.0.0.12:2380".into())]);
        assert_eq!(
            cluster,
            "n1=http://127.0.0.11:2380,n2=http://127.0.0.12:2380"
        );
        let argv = e.argv(&vars());
        assert_eq!(argv[0], "/usr/bin/etcd");
        assert!(argv.windows(2).any(|w| w == ["--name", "n2"]));
        assert!(
            argv.windows(2)
                .any(|w| w == ["--listen-client-urls", "http://127.0.0.12:2379"])
        );
        let n = node(
            Path::new("/bin/no{de"),
            &NodeOptions {
                snapshot_every: 7,
                consensus: node::consensus::EngineKind::BasicPaxos,
                unsafe_mutant: Some(Mutant::StaleRead),
            },
        );
        n.validate().expect("escaped program path");
        let argv = n.argv(&vars());
        assert_eq!(argv[0], "/bin/no{de");
        assert_eq!(argv[argv.len() - 2..], ["--unsafe", "stale-read"]);
        assert!(argv.windows(2).any(|w| w == ["--consensus", "basic-paxos"]));
        assert_eq!(
            n.initial_cluster(&[(3, "127.0.0.1:9".into())]),
            "3=127.0.0.1:9"
        );
    }
}
