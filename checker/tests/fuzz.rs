//! Seeded, bounded fuzzing of both readers: random bytes, and random mutations and
//! truncations of the reference histories (EDN, and JSONL written from them). No input
//! may panic, every error must carry a line inside the input, and the command line must
//! exit 3 naming that line.

use checker::history::History;
use checker::parse::{parse_file, parse_reader};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::Command;

const SEED: u64 = 0x5eed_c4ec;

fn reference(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/reference")
        .join(rel)
}

/// The JSONL form of a parsed history.
fn to_jsonl(h: &History) -> Vec<u8> {
    let mut out = Vec::new();
    h.write_jsonl(&mut out).unwrap();
    out
}

/// Seed inputs: a few reference files as EDN, the same as JSONL, and the vector form.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for rel in [
        "etcd/etcd_000.edn",
        "etcd/etcd_070.edn",
        "kv/c01-bad.edn",
        "kv/c10-ok.edn",
    ] {
        let path = reference(rel);
        let bytes = std::fs::read(&path).unwrap();
        let h = parse_file(&path).unwrap();
        let mut vector = b"[".to_vec();
        vector.extend_from_slice(&bytes);
        vector.extend_from_slice(b"]\n");
        out.push((format!("{rel}.jsonl"), to_jsonl(&h)));
        out.push((format!("{rel}.vec"), vector));
        out.push((rel.to_string(), bytes));
    }
    out
}

const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"(",
    b")",
    b"\"",
    b"\\",
    b":",
    b",",
    b";",
    b"#",
    b"#{",
    b"\n",
    b"nil",
    b"null",
    b"-1",
    b"99999999999999999999999N",
    b"1.5",
    b":info",
    b":invoke",
    b"\"type\"",
    b"\"ok\"",
    b"#jepsen.history.Op",
    b"\xff",
    b"\x00",
    b"\r\n",
    b"#inst ",
    b"\\newline",
    b"\"process\":",
    b":process 0",
    b":f :cas",
];

fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let len = b.len().max(1);
        match rng.random_range(0..6) {
            0 => {
                // Truncate anywhere.
                let at = rng.random_range(0..len);
                b.truncate(at);
            }
            1 => {
                let at = rng.random_range(0..len);
                if at < b.len() {
                    b[at] = rng.random();
                }
            }
            2 => {
                let at = rng.random_range(0..len).min(b.len());
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            3 => {
                let at = rng.random_range(0..len).min(b.len());
                let end = (at + rng.random_range(1..40)).min(b.len());
                b.drain(at..end);
            }
            4 => {
                // Duplicate a line (often a second outstanding op or a lone completion).
                let lines: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
                let i = rng.random_range(0..lines.len());
                let j = rng.random_range(0..lines.len());
                let mut v: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                let dup = v[i].clone();
                v.insert(j, dup);
                b = v.join(&b'\n');
            }
            _ => {
                // Swap two lines.
                let mut v: Vec<Vec<u8>> = b.split(|c| *c == b'\n').map(|l| l.to_vec()).collect();
                let i = rng.random_range(0..v.len());
                let j = rng.random_range(0..v.len());
                v.swap(i, j);
                b = v.join(&b'\n');
            }
        }
    }
    b
}

/// Rounds to run: `default`, or `CHECKER_FUZZ_ROUNDS` for a longer run by hand.
fn rounds(default: usize) -> usize {
    std::env::var("CHECKER_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Parses `bytes`; on error, checks the line is inside the input and the message names it.
fn check_input(name: &str, bytes: &[u8]) -> Option<usize> {
    match parse_reader(bytes, name) {
        Ok(_) => None,
        Err(e) => {
            let lines = bytes.split(|c| *c == b'\n').count();
            assert!(
                e.line >= 1 && e.line <= lines,
                "{name}: line {} of {lines}: {e}",
                e.line
            );
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{name}:{}: ", e.line)), "{msg}");
            Some(e.line)
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    for i in 0..rounds(400) {
        let len = rng.random_range(0..300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Half of them start like one of the formats, to get past detection.
        match i % 4 {
            0 => bytes.splice(0..0, b"{\"".iter().copied()),
            1 => bytes.splice(0..0, b"{:".iter().copied()),
            2 => bytes.splice(0..0, b"[".iter().copied()),
            _ => bytes.splice(0..0, b"".iter().copied()),
        };
        check_input("random", &bytes);
    }
}

#[test]
fn mutated_reference_histories_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);
    let corpus = corpus();
    let (mut rejected, mut accepted) = (0, 0);
    for round in 0..rounds(600) {
        let (name, input) = &corpus[round % corpus.len()];
        let m = mutate(&mut rng, input);
        match check_input(name, &m) {
            Some(_) => rejected += 1,
            None => accepted += 1,
        }
    }
    // Mutations must exercise both paths, or the test proves little.
    assert!(
        rejected > 100 && accepted > 10,
        "rejected {rejected}, accepted {accepted}"
    );
}

#[test]
fn cli_exits_3_naming_the_line_on_mutated_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 2);
    let corpus = corpus();
    let mut tried = 0;
    let mut round = 0;
    while tried < 12 && round < 1000 {
        let (name, input) = &corpus[round % corpus.len()];
        round += 1;
        let m = mutate(&mut rng, input);
        let path = dir.path().join(format!("m{round}.txt"));
        std::fs::write(&path, &m).unwrap();
        let label = path.display().to_string();
        let Some(line) = check_input(&label, &m) else {
            continue;
        };
        tried += 1;
        let out = Command::new(env!("CARGO_BIN_EXE_checker"))
            .arg("check")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("{label}:{line}: ")),
            "{name}: {stderr}"
        );
    }
    assert_eq!(tried, 12);
}
