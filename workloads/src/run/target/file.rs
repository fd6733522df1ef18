//! Target files (`workloads run --target-file my-store.toml`): a store that speaks a
//! protocol we support, described in TOML instead of Rust. `workloads/targets/`
//! holds the files for our node and for etcd.
//!
//! ```toml
//! name = "etcd"
//! protocol = "etcd"            # node | etcd
//! peers = "advertised"         # advertised | per-link
//! shared_address = false       # peers dial the client address
//! exits_with_parent = false    # else started through `setpriv --pdeathsig KILL`
//! inherit_listener = false     # takes its listener as fd 3 (LISTEN_FDS=1), per-link only
//! leader_isolation_ms = 1500   # how long the nemesis isolates a leader at a time
//! command = ["etcd", "--name", "n{id}", "--data-dir", "{data_dir}", "..."]
//! cluster_entry = "n{id}=http://{peer_addr}"
//!
//! [ready]                      # the member is up when this answers `status`
//! method = "GET"
//! path = "/health"
//! status = 200
//! ```
//!
//! A relative program path (one with a `/`) is taken from the file's folder; a bare
//! name is looked up on PATH. Every mistake is reported with the file and the line.

use super::{
    ENTRY_PLACEHOLDERS, PLACEHOLDERS, Peers, Probe, Protocol, TargetSpec, check_template, on_path,
    placeholders,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Largest target file read; a real one is a few hundred bytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    name: Spanned<String>,
    protocol: Protocol,
    peers: Peers,
    #[serde(default)]
    shared_address: bool,
    #[serde(default)]
    exits_with_parent: bool,
    #[serde(default)]
    inherit_listener: bool,
    #[serde(default = "leader_isolation_ms")]
    leader_isolation_ms: Spanned<u64>,
    command: Spanned<Vec<Spanned<String>>>,
    cluster_entry: Spanned<String>,
    ready: Spanned<ReadySpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadySpec {
    #[serde(default = "get")]
    method: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default = "ok_status")]
    status: u16,
}

fn get() -> Spanned<String> {
    Spanned::new(0..0, "GET".to_string())
}

fn ok_status() -> u16 {
    200
}

fn leader_isolation_ms() -> Spanned<u64> {
    Spanned::new(0..0, 500)
}

/// A target-file mistake: `file:line: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub reason: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads and checks a target file.
pub fn load(path: &Path) -> Result<TargetSpec, FileError> {
    let err = |line: usize, reason: String| FileError {
        file: path.to_path_buf(),
        line,
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(0, format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read: {e}")))?;
    parse(&text, path)
}

/// Parses a target file's text; `path` names it in errors and anchors relative
/// program paths.
pub fn parse(text: &str, path: &Path) -> Result<TargetSpec, FileError> {
    let err = |offset: usize, reason: String| FileError {
        file: path.to_path_buf(),
        line: line_of(text, offset),
        reason,
    };
    let spec: FileSpec = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        err(at, e.message().trim().to_string())
    })?;
    let name = spec.name.get_ref().trim();
    if name.is_empty() || name.len() > 64 {
        return Err(err(
            spec.name.span().start,
            "name must be 1 to 64 characters".into(),
        ));
    }
    let command = spec.command.get_ref();
    let Some(program) = command.first() else {
        return Err(err(spec.command.span().start, "command is empty".into()));
    };
    match placeholders(program.get_ref()) {
        Ok(p) if p.is_empty() => {}
        _ => {
            return Err(err(
                program.span().start,
                "the program (the command's first item) takes no placeholders".into(),
            ));
        }
    }
    for arg in command.iter() {
        check_template(arg.get_ref(), &PLACEHOLDERS).map_err(|e| err(arg.span().start, e))?;
    }
    check_template(spec.cluster_entry.get_ref(), &ENTRY_PLACEHOLDERS)
        .map_err(|e| err(spec.cluster_entry.span().start, e))?;
    let ready = spec.ready.get_ref();
    let method = ready.method.get_ref().to_ascii_uppercase();
    if method != "GET" && method != "POST" {
        return Err(err(
            ready.method.span().start.max(spec.ready.span().start),
            format!(
                "ready.method must be GET or POST, not {:?}",
                ready.method.get_ref()
            ),
        ));
    }
    if !ready.path.get_ref().starts_with('/') {
        return Err(err(
            ready.path.span().start,
            "ready.path must start with '/'".into(),
        ));
    }
    let isolation = *spec.leader_isolation_ms.get_ref();
    if !(50..=60_000).contains(&isolation) {
        return Err(err(
            spec.leader_isolation_ms.span().start,
            "leader_isolation_ms must be between 50 and 60000".into(),
        ));
    }
    let program =
        resolve_program(program.get_ref(), path).map_err(|e| err(program.span().start, e))?;
    let mut argv = vec![
        program
            .display()
            .to_string()
            .replace('{', "{{")
            .replace('}', "}}"),
    ];
    argv.extend(command.iter().skip(1).map(|a| a.get_ref().clone()));
    let target = TargetSpec {
        name: name.to_string(),
        command: argv,
        cluster_entry: spec.cluster_entry.get_ref().clone(),
        protocol: spec.protocol,
        peers: spec.peers,
        shared_address: spec.shared_address,
        exits_with_parent: spec.exits_with_parent,
        inherits_listener: spec.inherit_listener,
        ready: Probe {
            method,
            path: ready.path.get_ref().clone(),
            body: ready.body.clone(),
            status: ready.status,
        },
        leader_isolation_ms: isolation,
        file: Some(path.to_path_buf()),
    };
    target.validate().map_err(|e| err(0, e))?;
    Ok(target)
}

/// A program with a `/` is a path (relative ones from the file's folder); a bare name
/// is looked up on PATH.
fn resolve_program(program: &str, file: &Path) -> Result<PathBuf, String> {
    if program.contains('/') {
        let p = Path::new(program);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            file.parent().unwrap_or(Path::new(".")).join(p)
        };
        if !p.is_file() {
            return Err(format!("program {} does not exist", p.display()));
        }
        return Ok(p);
    }
    on_path(program).ok_or_else(|| format!("program {program:?} is not on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::target::{self, MemberVars, NodeOptions};

    fn targets_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("targets")
    }

    /// The example's text with its program replaced by `program`, as a file in `dir`.
    fn with_program(example: &str, program: &str, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(targets_dir().join(example)).expect("example");
        let mut out = String::new();
        for line in text.lines() {
            if line.starts_with("command = [") {
                let rest = line.split_once(',').map_or("]", |(_, r)| r);
                out.push_str(&format!("command = [{program:?},{rest}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        let p = dir.join(example);
        std::fs::write(&p, out).expect("write");
        p
    }

    fn member(id: u64) -> MemberVars {
        MemberVars {
            id,
            data_dir: format!("/data/n{id}"),
            client_addr: format!("127.0.0.{}:2379", 10 + id),
            peer_addr: format!("127.0.0.{}:2380", 10 + id),
            initial_cluster: "1=a,2=b".into(),
            cluster_state: "new",
        }
    }

    #[test]
    fn the_example_files_describe_the_built_in_targets() {
        let dir = tempfile::tempdir().expect("tmp");
        let sh = on_path("sh").expect("sh on PATH").display().to_string();
        let node_file = load(&with_program("node.toml", &sh, dir.path())).expect("node.toml");
        let built = target::node(
            Path::new(&sh),
            &NodeOptions {
                snapshot_every: 500,
                unsafe_mutant: None,
                ..NodeOptions::default()
            },
        );
        same_target(&node_file, &built);
        let etcd_file = load(&with_program("etcd.toml", &sh, dir.path())).expect("etcd.toml");
        same_target(&etcd_file, &target::etcd(Path::new(&sh)));
    }

    /// A file's target is the built-in one, apart from where it came from.
    fn same_target(from_file: &TargetSpec, built: &TargetSpec) {
        assert!(from_file.file.is_some());
        let from_file = TargetSpec {
            file: None,
            ..from_file.clone()
        };
        assert_eq!(&from_file, built);
        assert_eq!(from_file.argv(&member(3)), built.argv(&member(3)));
    }

    fn parse_err(text: &str) -> FileError {
        match parse(text, Path::new("/x/my-store.toml")) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    const GOOD_TAIL: &str = "cluster_entry = \"{id}={peer_addr}\"\n[ready]\npath = \"/status\"\n";

    #[test]
    fn mistakes_name_the_file_and_line() {
        let e = parse_err(&format!(
            "name = \"s\"\nprotocol = \"node\"\npeers = \"per-link\"\ncommand = [\"sh\", \"{{nope}}\"]\n{GOOD_TAIL}"
        ));
        assert_eq!(e.line, 4, "{e}");
        assert!(
            e.to_string()
                .starts_with("/x/my-store.toml:4: unknown placeholder {nope}"),
            "{e}"
        );
        let e = parse_err(&format!(
            "name = \"s\"\nprotocol = \"grpc\"\npeers = \"per-link\"\ncommand = [\"sh\"]\n{GOOD_TAIL}"
        ));
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.reason.contains("node") && e.reason.contains("etcd"),
            "{e}"
        );
        let e = parse_err(&format!(
            "name = \"s\"\nprotocol = \"node\"\npeers = \"per-link\"\nhosts = 3\ncommand = [\"sh\"]\n{GOOD_TAIL}"
        ));
        assert_eq!(e.line, 4, "{e}");
        let e = parse_err(&format!(
            "name = \"s\"\nprotocol = \"node\"\npeers = \"per-link\"\ncommand = [\"./no-such-store\"]\n{GOOD_TAIL}"
        ));
        assert_eq!(e.line, 4, "{e}");
        assert!(e.reason.contains("/x/./no-such-store"), "{e}");
        let e = parse_err(
            "name = \"s\"\nprotocol = \"node\"\npeers = \"per-link\"\ncommand = [\"sh\"]\ncluster_entry = \"{id}\"\n[ready]\nmethod = \"PUT\"\npath = \"/\"\n",
        );
        assert_eq!(e.line, 7, "{e}");
        let e = parse_err("name = \"s\"\nprotocol = \"node\"\n");
        assert!(e.reason.contains("missing field"), "{e}");
        let e = parse_err("name = \"s\"\nprotocol = \"node\"\npeers = [\n");
        assert_eq!(e.line, 3, "{e}");
    }
}
