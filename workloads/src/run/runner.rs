//! One run from start to verdict: start the cluster, wait for a leader, drive clients
//! with the nemesis for the time limit, heal, recover, read every key, stop the
//! cluster, check the history, write the run folder, print the summary.

use super::api::{self, Api};
use super::client::{self, Workload};
use super::cluster::{Cluster, ClusterSpec};
use super::nemesis::Nemesis;
use super::nodebin::find_node_binary;
use super::output::{self, Summary};
use super::recorder::Recorder;
use super::status::{self, ClusterView};
use super::target::{self, NodeOptions, Protocol, TargetSpec};
use super::{RunArgs, TargetKind, http, report};
use crate::args::FaultSet;
use crate::faults::{self, Fault};
use anyhow::{Context, bail};
use checker::check::{CheckOptions, ModelKind};
use checker::parse::Format;
use checker::report::{ClusterEvent, FaultInterval, RunInfo};
use checker::verdict::{Validity, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use node::consensus::EngineKind;
use node::replica::Mutant;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

const LEADER_WAIT: Duration = Duration::from_secs(30);
const RECOVERY_LEADER_WAIT: Duration = Duration::from_secs(20);
/// Quiet time after healing, so lagging nodes catch up before the final reads.
const RECOVERY_SETTLE: Duration = Duration::from_secs(2);
const MAX_NODES: usize = 15;
const MAX_CLIENTS: usize = 1000;
const MAX_KEYS: usize = 100_000;

fn validate(args: &RunArgs) -> anyhow::Result<()> {
    if args.nodes == 0 || args.nodes > MAX_NODES {
        bail!("--nodes must be between 1 and {MAX_NODES}");
    }
    if args.clients == 0 || args.clients > MAX_CLIENTS {
        bail!("--clients must be between 1 and {MAX_CLIENTS}");
    }
    if args.keys == 0 || args.keys > MAX_KEYS {
        bail!("--keys must be between 1 and {MAX_KEYS}");
    }
    let positive = |v: f64, name: &str| -> anyhow::Result<()> {
        if !(v.is_finite() && v > 0.0 && v < 1e7) {
            bail!("--{name} must be a positive number of reasonable size, not {v}");
        }
        Ok(())
    };
    positive(args.time_limit, "time-limit")?;
    positive(args.rate, "rate")?;
    positive(args.nemesis_interval, "nemesis-interval")?;
    positive(args.op_timeout, "op-timeout")?;
    positive(args.check_time_limit, "check-time-limit")?;
    let built_in_node = args.target_file.is_none() && args.target == TargetKind::Node;
    if args.unsafe_mutant.is_some() && !built_in_node {
        bail!("--unsafe switches on a bug in our node: it needs --target node");
    }
    if args.etcd_bin.is_some() && (args.target_file.is_some() || args.target != TargetKind::Etcd) {
        bail!("--etcd-bin goes with --target etcd");
    }
    if args.node_bin.is_some() && !built_in_node {
        bail!("--node-bin goes with --target node");
    }
    if args.consensus != EngineKind::Raft && !built_in_node {
        bail!("--consensus chooses our node's engine: it needs --target node");
    }
    Ok(())
}

/// The target the options name: built in, or read from a target file.
fn target_spec(args: &RunArgs) -> anyhow::Result<TargetSpec> {
    let spec = match (&args.target_file, args.target) {
        (Some(f), _) => target::file::load(f)?,
        (None, TargetKind::Etcd) => target::etcd(&target::find_etcd(args.etcd_bin.as_deref())?),
        (None, TargetKind::Node) => target::node(
            &find_node_binary(args.node_bin.as_deref())?,
            &NodeOptions {
                snapshot_every: args.snapshot_every,
                consensus: args.consensus,
                unsafe_mutant: args.unsafe_mutant,
            },
        ),
    };
    if args.etcd_serializable_reads && spec.protocol != Protocol::Etcd {
        bail!(
            "--etcd-serializable-reads needs a target that speaks etcd's protocol ({} speaks {})",
            spec.name,
            spec.protocol.name()
        );
    }
    Ok(spec)
}

fn run_name(
    target: &str,
    consensus: EngineKind,
    kinds: &[Fault],
    mutant: Option<&str>,
    serializable: bool,
) -> String {
    let mut name = if kinds.is_empty() {
        "no-faults".to_string()
    } else {
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("-")
    };
    if consensus != EngineKind::Raft {
        name = format!("{consensus}-{name}");
    }
    if target != "node" {
        let safe: String = target
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        name = format!("{safe}-{name}");
    }
    if serializable {
        name.push_str("-serializable-reads");
    }
    if let Some(m) = mutant {
        let safe: String = m
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        name.push_str("-unsafe-");
        name.push_str(&safe);
    }
    name
}

fn replay_command(args: &RunArgs, seed: u64) -> String {
    let mut c = "workloads run".to_string();
    match (&args.target_file, args.target) {
        (Some(f), _) => c.push_str(&format!(" --target-file {}", f.display())),
        (None, TargetKind::Etcd) => c.push_str(" --target etcd"),
        (None, TargetKind::Node) => {}
    }
    if args.consensus != EngineKind::Raft {
        c.push_str(&format!(" --consensus {}", args.consensus));
    }
    if args.etcd_serializable_reads {
        c.push_str(" --etcd-serializable-reads");
    }
    c.push_str(&format!(
        " --nodes {} --clients {} --keys {} --time-limit {} --rate {} --nemesis {} --nemesis-interval {} --snapshot-every {} --seed {seed}",
        args.nodes,
        args.clients,
        args.keys,
        args.time_limit,
        args.rate,
        args.nemesis,
        args.nemesis_interval,
        args.snapshot_every
    ));
    if let Some(m) = args.unsafe_mutant {
        c.push_str(&format!(" --unsafe {}", m.name()));
    }
    c
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

/// What `run.json` holds. Its `name`, `command`, `seed`, `config`, `faults` and
/// `cluster_events` fields are a `RunInfo`, so `workloads report` reads them back.
#[derive(Serialize)]
struct RunFile<'a> {
    name: &'a str,
    /// The store that ran: `node`, `etcd`, or a target file's name.
    target: &'a str,
    command: &'a str,
    seed: u64,
    config: &'a Value,
    started: String,
    workload_s: f64,
    total_s: f64,
    summary: &'a Summary,
    faults: &'a [FaultInterval],
    cluster_events: &'a [ClusterEvent],
    /// `true`, `false` or `"unknown"`.
    valid: Validity,
    verdict: Value,
    node_crashes: &'a [String],
    nemesis_errors: &'a [String],
    interrupted: bool,
}

fn exit_code(v: Validity) -> u8 {
    match v {
        Validity::Linearizable => 0,
        Validity::NotLinearizable => 1,
        Validity::Unknown => 2,
    }
}

fn validity_word(v: Validity) -> &'static str {
    match v {
        Validity::Linearizable => "linearizable",
        Validity::NotLinearizable => "NOT linearizable",
        Validity::Unknown => "unknown",
    }
}

fn progress_bar(secs: f64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(secs.ceil() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} s  {msg}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// A flag that turns true on ctrl-c (SIGINT) or SIGTERM.
fn listen_for_interrupts() -> anyhow::Result<(watch::Receiver<bool>, tokio::task::JoinHandle<()>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("workloads: interrupted; stopping the cluster");
        tx.send_replace(true);
    });
    Ok((rx, task))
}

/// Waits until every member passes the target's readiness probe and one of them
/// leads, giving up early (with the end of a member's log) when every member has
/// exited, which is what a bad flag or a busy port looks like.
async fn wait_until_ready(
    cluster: &Cluster,
    http: &http::HttpClient,
    api: &Api,
    addrs: &std::collections::BTreeMap<u64, std::net::SocketAddr>,
    run_dir: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + LEADER_WAIT;
    let probe = cluster.target().ready.clone();
    let mut ready = BTreeSet::new();
    while Instant::now() < deadline {
        for (&id, &addr) in addrs {
            if !ready.contains(&id) && api::probe(http, addr, &probe).await {
                ready.insert(id);
            }
        }
        if ready.len() == addrs.len()
            && status::wait_for_leader(http, api, addrs, Duration::from_secs(1))
                .await
                .is_some()
        {
            return Ok(());
        }
        let crashed = cluster.crashed();
        if crashed.len() == addrs.len() {
            let (id, status) = &crashed[0];
            let log = run_dir.join("nodes").join(format!("n{id}.log"));
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            cluster.shutdown();
            bail!(
                "every member exited at start (n{id}: {status}); end of {}:\n{}",
                log.display(),
                tail.join("\n")
            );
        }
        if ready.len() < addrs.len() {
            tokio::time::sleep(status::POLL_INTERVAL).await;
        }
    }
    let crashed = cluster.crashed();
    cluster.shutdown();
    let waiting: Vec<String> = addrs
        .keys()
        .filter(|id| !ready.contains(*id))
        .map(|id| format!("n{id}"))
        .collect();
    bail!(
        "{} within {} s{}; see {}",
        if waiting.is_empty() {
            "no leader elected".to_string()
        } else {
            format!(
                "not ready ({} {} {})",
                waiting.join(", "),
                probe.method,
                probe.path
            )
        },
        LEADER_WAIT.as_secs(),
        if crashed.is_empty() {
            String::new()
        } else {
            format!(" (members exited: {crashed:?})")
        },
        run_dir.join("nodes").display()
    )
}

/// Under the Paxos engines membership is static (no membership fault), and an
/// acceptor restarted on an empty disk would forget its promises (Raft's node
/// identity rule, which makes a wipe safe, has no Paxos counterpart): `all` leaves
/// both out with a note, naming either is refused.
fn refuse_faults_the_engine_cannot_take(
    args: &RunArgs,
    kinds: &mut Vec<Fault>,
) -> anyhow::Result<()> {
    if args.consensus == EngineKind::Raft {
        return Ok(());
    }
    let why = |k: Fault| match k {
        Fault::Membership => Some("membership is static under the Paxos engines"),
        Fault::Wipe => Some(
            "a Paxos acceptor that loses its disk forgets its promises, and nothing like \
             Raft's node identity rule keeps it out until it catches up",
        ),
        _ => None,
    };
    let cannot: Vec<Fault> = kinds
        .iter()
        .copied()
        .filter(|k| why(*k).is_some())
        .collect();
    if cannot.is_empty() {
        return Ok(());
    }
    if args.nemesis != FaultSet::all() {
        let k = cannot[0];
        bail!(
            "--nemesis {} cannot run under --consensus {}: {}",
            k.name(),
            args.consensus,
            why(k).unwrap_or_default()
        );
    }
    for k in cannot {
        kinds.retain(|x| *x != k);
        eprintln!(
            "workloads: --nemesis all under --consensus {} leaves out {}: {}",
            args.consensus,
            k.name(),
            why(k).unwrap_or_default()
        );
    }
    Ok(())
}

/// Runs the whole thing; returns the exit code (0/1/2). Setup problems are errors.
pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    validate(&args)?;
    let mut kinds = faults::for_real_run(&args.nemesis).map_err(anyhow::Error::msg)?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    let for_spec = args.clone();
    let spec = tokio::task::spawn_blocking(move || target_spec(&for_spec))
        .await
        .context("finding the target")??;
    if kinds.contains(&Fault::Membership)
        && spec.protocol == Protocol::Etcd
        && !spec.command.iter().any(|a| a.contains("{cluster_state}"))
    {
        bail!(
            "membership faults on etcd add members back as new members, which start with \
             --initial-cluster-state existing: target {} must pass {{cluster_state}}",
            spec.name
        );
    }
    // A wipe restarts a member with the command line it first had, which only our
    // node's identity rule makes safe; an etcd member that lost its data has to be
    // removed and added back, which is what the membership fault does on etcd.
    if kinds.contains(&Fault::Wipe) && spec.protocol == Protocol::Etcd {
        if args.nemesis == FaultSet::all() {
            kinds.retain(|k| *k != Fault::Wipe);
            eprintln!(
                "workloads: --nemesis all on etcd leaves out wipe (the membership fault removes, wipes and re-adds etcd members)"
            );
        } else {
            bail!(
                "--nemesis wipe needs our node: an etcd member restarted blank with its first \
                 command line is not a member etcd can take back; the membership fault removes, \
                 wipes and re-adds etcd members"
            );
        }
    }
    refuse_faults_the_engine_cannot_take(&args, &mut kinds)?;
    let name = run_name(
        &spec.name,
        args.consensus,
        &kinds,
        args.unsafe_mutant.map(Mutant::name),
        args.etcd_serializable_reads,
    );
    let command = replay_command(&args, seed);
    let run_dir = output::make_run_dir(&args.results, &name)?;
    let data = tempfile::Builder::new()
        .prefix("workloads-data-")
        .tempdir()
        .context("creating a temporary folder for node data")?;
    let config = json!({
        "target": spec.name,
        "target_file": spec.file.as_ref().map(|f| f.display().to_string()),
        "protocol": spec.protocol.name(),
        "program": spec.command[0],
        "serializable_reads": args.etcd_serializable_reads,
        "nodes": args.nodes, "clients": args.clients, "keys": args.keys,
        "time_limit_s": args.time_limit, "rate": args.rate, "nemesis": args.nemesis.to_string(),
        "nemesis_interval_s": args.nemesis_interval, "snapshot_every": args.snapshot_every,
        "unsafe": args.unsafe_mutant.map(Mutant::name),
        "consensus": (spec.protocol == Protocol::Node).then(|| args.consensus.as_str()),
        "op_timeout_s": args.op_timeout,
    });
    eprintln!(
        "workloads: {name}: {} {} members, {} clients, {} keys, {} s at {} ops/s, seed {seed}",
        args.nodes, spec.name, args.clients, args.keys, args.time_limit, args.rate
    );
    // Listening before any node starts: from here on ctrl-c and SIGTERM end the run
    // through the normal teardown instead of killing us and orphaning the nodes.
    let (interrupt_rx, signals) = listen_for_interrupts()?;
    let started = output::rfc3339_utc(std::time::SystemTime::now());
    let start = Instant::now();
    let recorder = Arc::new(Recorder::new(start));
    let cluster = Arc::new(
        Cluster::start(ClusterSpec {
            nodes: args.nodes,
            target: spec.clone(),
            data_root: data.path().to_path_buf(),
            log_dir: run_dir.join("nodes"),
        })
        .await?,
    );
    let http = http::client_with_routes(cluster.client_routes());
    let api = Api::new(
        spec.protocol,
        args.etcd_serializable_reads,
        &cluster.peer_addrs(),
    );
    let addrs = cluster.addrs();
    let mut interrupt = interrupt_rx.clone();
    tokio::select! {
        r = wait_until_ready(&cluster, &http, &api, &addrs, &run_dir) => r?,
        _ = interrupt.changed() => {
            cluster.shutdown();
            bail!("interrupted while waiting for a leader");
        }
    }

    // Watch the cluster for the whole run.
    let view = Arc::new(ClusterView::default());
    let (poll_stop_tx, poll_stop_rx) = watch::channel(false);
    let mut pollers = JoinSet::new();
    for (&id, &addr) in &addrs {
        pollers.spawn(status::poll_node(
            id,
            addr,
            http.clone(),
            api.clone(),
            view.clone(),
            recorder.clone(),
            poll_stop_rx.clone(),
        ));
    }

    // The workload and the nemesis.
    let mut master = ChaCha8Rng::seed_from_u64(seed);
    let workload = Arc::new(Workload::new(
        recorder.clone(),
        api.clone(),
        args.keys,
        Duration::from_secs_f64(args.op_timeout),
        args.clients as u64,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ids: Vec<u64> = addrs.keys().copied().collect();
    let interval = Duration::from_secs_f64(args.clients as f64 / args.rate);
    let mut clients = JoinSet::new();
    for c in 0..args.clients {
        let node = ids[c % ids.len()];
        let addr = addrs[&node];
        let rng = ChaCha8Rng::seed_from_u64(master.random::<u64>());
        clients.spawn(client::client_loop(
            workload.clone(),
            http.clone(),
            client::ClientSpec {
                node,
                addr,
                first_process: c as u64,
                interval,
            },
            rng,
            stop_rx.clone(),
        ));
    }
    let mut nem = Nemesis {
        cluster: cluster.clone(),
        view: view.clone(),
        recorder: recorder.clone(),
        workload: workload.clone(),
        kinds: kinds.clone(),
        interval: Duration::from_secs_f64(args.nemesis_interval),
        leader_isolation: Duration::from_millis(spec.leader_isolation_ms),
        rng: ChaCha8Rng::seed_from_u64(master.random::<u64>()),
        partitions: 0,
        faults: Vec::new(),
        errors: Vec::new(),
        http: http.clone(),
        api: api.clone(),
        etcd_removed: Default::default(),
        removed: BTreeSet::new(),
    };
    let nem_stop = stop_rx.clone();
    let nemesis_task = tokio::spawn(async move {
        nem.run(nem_stop).await;
        nem
    });

    // Wait out the time limit (or ctrl-c), showing progress.
    let workload_start = Instant::now();
    let limit = Duration::from_secs_f64(args.time_limit);
    let pb = progress_bar(args.time_limit);
    while workload_start.elapsed() < limit && !*interrupt.borrow() {
        let left = limit.saturating_sub(workload_start.elapsed());
        tokio::select! {
            () = tokio::time::sleep(left.min(Duration::from_millis(250))) => {}
            _ = interrupt.changed() => {}
        }
        pb.set_position(workload_start.elapsed().as_secs());
        pb.set_message(format!(
            "{} ok / {} ops, leader changes {}",
            workload.ok_count.load(Ordering::Relaxed),
            workload.op_count.load(Ordering::Relaxed),
            view.leader_changes()
        ));
    }
    pb.finish_and_clear();
    let workload_s = workload_start.elapsed().as_secs_f64();
    stop_tx.send_replace(true);
    // Every client returns within one operation timeout; a stuck one is abandoned
    // (its open invoke counts as info).
    let drain = Duration::from_secs_f64(args.op_timeout) + Duration::from_secs(5);
    if tokio::time::timeout(drain, async {
        while clients.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        clients.abort_all();
    }
    let mut nem = nemesis_task.await.context("the nemesis task failed")?;

    // Heal everything, restart nodes that died on their own, recover, read every key.
    let mut node_crashes: Vec<String> = Vec::new();
    for (id, status) in cluster.crashed() {
        node_crashes.push(format!("n{id} exited on its own ({status})"));
        cluster.kill(id)?;
    }
    cluster.heal_all()?;
    recorder.nemesis(
        "heal",
        json!({"detail": "all links healed, all nodes running"}),
    );
    let interrupted = *interrupt_rx.borrow();
    let mut final_ok = 0;
    if !interrupted {
        // Every removed voter back before the final reads.
        tokio::select! {
            _ = nem.heal_membership(RECOVERY_LEADER_WAIT) => {}
            _ = interrupt.changed() => {}
        }
    }
    let interrupted = *interrupt_rx.borrow();
    if !interrupted {
        eprintln!("workloads: healed; waiting for the cluster to recover");
        let targets: Vec<_> = addrs.values().copied().collect();
        let recover = async {
            let _ = status::wait_for_leader(&http, &api, &addrs, RECOVERY_LEADER_WAIT).await;
            tokio::time::sleep(RECOVERY_SETTLE).await;
            client::final_reads(&workload, &http, &targets, 2 * targets.len()).await
        };
        tokio::select! {
            n = recover => final_ok = n,
            _ = interrupt.changed() => {}
        }
    }
    let interrupted = *interrupt_rx.borrow();
    for (id, status) in cluster.crashed() {
        node_crashes.push(format!("n{id} exited on its own ({status})"));
    }
    poll_stop_tx.send_replace(true);
    while pollers.join_next().await.is_some() {}
    cluster.shutdown();
    drop(data);

    // The history and its verdict.
    let recorded = recorder.take().map_err(anyhow::Error::msg)?;
    let history_path = run_dir.join("history.jsonl");
    recorded
        .save(&history_path, Format::Jsonl)
        .context("writing history.jsonl")?;
    recorded
        .save(&run_dir.join("history.edn"), Format::Edn)
        .context("writing history.edn")?;
    // The checker reads the file back, so the verdict is about exactly what was saved.
    let history = Arc::new(
        checker::parse::parse_file(&history_path)
            .map_err(|e| anyhow::anyhow!("the recorded history does not parse: {e}"))?,
    );
    let faults = nem.faults.clone();
    let cluster_events = view.events();
    let mut summary = output::summarize(&history, workload_s);
    summary.faults = faults.len();
    summary.leader_changes = view.leader_changes();
    summary.final_reads_ok = final_ok;
    summary.acknowledged_writes_lost = output::acknowledged_writes_lost(&history);
    (summary.snapshots_taken, summary.snapshots_installed) =
        output::count_snapshots(&run_dir.join("nodes"));

    if interrupted {
        eprintln!(
            "workloads: interrupted; history so far in {}",
            run_dir.display()
        );
        bail!("interrupted");
    }

    eprintln!("workloads: checking {} operations", history.ops.len());
    let options = CheckOptions {
        model: ModelKind::Kv,
        initial: None,
        knossos: false,
        time_limit: Some(Duration::from_secs_f64(args.check_time_limit)),
        all_keys: true,
        ..CheckOptions::default()
    };
    let h = history.clone();
    let checking = tokio::task::spawn_blocking(move || checker::check::check(&h, &options));
    let verdict: Verdict = tokio::select! {
        v = checking => v.context("the checker failed")?
            .map_err(|e| anyhow::anyhow!("{}", e.in_file(&history_path.display().to_string())))?,
        _ = interrupt.changed() => bail!("interrupted while checking; history in {}", run_dir.display()),
    };
    signals.abort();
    std::fs::write(
        run_dir.join("checker.json"),
        serde_json::to_string_pretty(&verdict)?,
    )
    .context("writing checker.json")?;

    let info = RunInfo {
        name: name.clone(),
        command: command.clone(),
        seed: Some(seed),
        config: config.clone(),
        faults: faults.clone(),
        cluster_events: cluster_events.clone(),
    };
    let run_file = RunFile {
        name: &name,
        target: &spec.name,
        command: &command,
        seed,
        config: &config,
        started,
        workload_s,
        total_s: start.elapsed().as_secs_f64(),
        summary: &summary,
        faults: &faults,
        cluster_events: &cluster_events,
        valid: verdict.valid,
        verdict: json!({
            "check_s": verdict.check_s,
            "failing_keys": verdict.keys.iter()
                .filter(|k| k.valid == Validity::NotLinearizable)
                .map(|k| k.key.clone()).collect::<Vec<_>>(),
        }),
        node_crashes: &node_crashes,
        nemesis_errors: &nem.errors,
        interrupted,
    };
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::to_string_pretty(&run_file)?,
    )
    .context("writing run.json")?;
    let report_path = report::render(&run_dir, &history, &verdict, &info);
    output::update_latest(&args.results, &run_dir)?;
    report::index(&args.results);

    print_summary(
        &summary,
        workload_s,
        &faults,
        &verdict,
        &node_crashes,
        &nem.errors,
    );
    match &report_path {
        Ok(p) => eprintln!("workloads: report: {}", p.display()),
        Err(e) => eprintln!(
            "workloads: no report ({e:#}); run folder: {}",
            run_dir.display()
        ),
    }
    if verdict.valid != Validity::Linearizable {
        eprintln!("workloads: replay: {command}");
    }
    Ok(exit_code(verdict.valid))
}

fn print_summary(
    s: &Summary,
    workload_s: f64,
    faults: &[FaultInterval],
    verdict: &Verdict,
    crashes: &[String],
    nemesis_errors: &[String],
) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1} ms"));
    eprintln!(
        "workloads: {} ops in {workload_s:.1} s: {} ok, {} fail, {} info; {:.0} ok/s; latency (ok) p50 {}, p99 {}",
        s.operations,
        s.ok,
        s.fail,
        s.info,
        s.ok_per_s,
        ms(s.latency_ok_p50_ms),
        ms(s.latency_ok_p99_ms)
    );
    for (f, by) in &s.by_function {
        let parts: Vec<String> = by.iter().map(|(o, n)| format!("{o} {n}")).collect();
        eprintln!("workloads:   {f}: {}", parts.join(", "));
    }
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for f in faults {
        *by_kind.entry(f.kind.as_str()).or_default() += 1;
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    eprintln!(
        "workloads: faults injected: {} ({}); leader changes seen: {}; final reads ok: {}",
        faults.len(),
        if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(", ")
        },
        s.leader_changes,
        s.final_reads_ok
    );
    eprintln!(
        "workloads: snapshots taken: {}; installed from a leader: {}; acknowledged writes lost: {}",
        s.snapshots_taken, s.snapshots_installed, s.acknowledged_writes_lost
    );
    for c in crashes {
        eprintln!("workloads: warning: {c}");
    }
    for e in nemesis_errors {
        eprintln!("workloads: warning: nemesis: {e}");
    }
    let failing: Vec<String> = verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .map(|k| {
            k.key
                .as_ref()
                .map_or_else(|| "(register)".to_string(), |k| k.to_string())
        })
        .collect();
    eprintln!(
        "workloads: verdict: {} (checked in {:.2} s){}",
        validity_word(verdict.valid),
        verdict.check_s,
        if failing.is_empty() {
            String::new()
        } else {
            format!("; failing keys: {}", failing.join(", "))
        }
    );
}

/// `workloads report DIR`: reads run.json, history.jsonl and checker.json back and
/// renders the report again.
pub fn rerender(dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    let read = |name: &str| -> anyhow::Result<String> {
        let p = dir.join(name);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let info: RunInfo = serde_json::from_str(&read("run.json")?)
        .with_context(|| format!("{}: not a run.json", dir.join("run.json").display()))?;
    let verdict: Verdict = serde_json::from_str(&read("checker.json")?).with_context(|| {
        format!(
            "{}: not a checker verdict",
            dir.join("checker.json").display()
        )
    })?;
    let history = checker::parse::parse_file(&dir.join("history.jsonl"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = report::render(dir, &history, &verdict, &info)?;
    eprintln!("workloads: report: {}", path.display());
    if let Some(results) = dir.parent() {
        report::index(results);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(consensus: EngineKind, nemesis: &str) -> RunArgs {
        RunArgs {
            consensus,
            nemesis: nemesis.parse().expect("fault set"),
            ..RunArgs::default_run()
        }
    }

    #[test]
    fn paxos_refuses_membership_and_wipe_and_all_leaves_them_out() {
        let kinds = |a: &RunArgs| faults::for_real_run(&a.nemesis).expect("kinds");
        let raft = args(EngineKind::Raft, "all");
        let mut k = kinds(&raft);
        refuse_faults_the_engine_cannot_take(&raft, &mut k).expect("raft takes all");
        assert!(k.contains(&Fault::Wipe) && k.contains(&Fault::Membership));
        for engine in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
            for named in ["wipe", "kill,membership"] {
                let a = args(engine, named);
                let err = refuse_faults_the_engine_cannot_take(&a, &mut kinds(&a))
                    .expect_err("refused")
                    .to_string();
                assert!(err.contains(engine.as_str()), "{err}");
            }
            let all = args(engine, "all");
            let mut k = kinds(&all);
            refuse_faults_the_engine_cannot_take(&all, &mut k).expect("all is cut down");
            assert!(!k.contains(&Fault::Wipe) && !k.contains(&Fault::Membership));
            assert!(k.contains(&Fault::Partition) && k.contains(&Fault::Kill));
            let plain = args(engine, "partition,kill,pause");
            let mut k = kinds(&plain);
            refuse_faults_the_engine_cannot_take(&plain, &mut k).expect("takes these");
            assert_eq!(k.len(), 3);
        }
    }
}
