//! Runs one scenario's command as a child of this executable, passing its output
//! through to ours as it comes and keeping its start and its end for the scenario's
//! log and the JUnit file.

use anyhow::Context;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Bytes of a child's output kept: the first [`HEAD_BYTES`] and the newest rest.
const KEEP_BYTES: usize = 256 << 10;
const HEAD_BYTES: usize = 32 << 10;

/// What one child did.
pub struct Finished {
    /// Its exit status (-1 when a signal ended it).
    pub code: i32,
    /// At most [`KEEP_BYTES`] of its stdout and stderr, interleaved as they came: the
    /// first lines and the newest.
    pub output: String,
}

/// Runs `exe args`, streaming its stdout to ours and its stderr to ours.
pub fn run(exe: &Path, args: &[String]) -> anyhow::Result<Finished> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let tail = Mutex::new(Tail::default());
    let (out, err) = (child.stdout.take(), child.stderr.take());
    std::thread::scope(|s| {
        if let Some(out) = out {
            s.spawn(|| pass_through(out, &mut std::io::stdout(), &tail));
        }
        if let Some(err) = err {
            s.spawn(|| pass_through(err, &mut std::io::stderr(), &tail));
        }
    });
    let status = child.wait().context("waiting for a scenario")?;
    let tail = tail.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(Finished {
        code: status.code().unwrap_or(-1),
        output: tail.text(),
    })
}

/// Copies lines from `from` to `to` and into `tail` until the child closes its end.
fn pass_through(from: impl Read, to: &mut impl Write, tail: &Mutex<Tail>) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                // Our own stdout or stderr going away must not stop the child's.
                let _ = to.write_all(&line).and_then(|()| to.flush());
                tail.lock().unwrap_or_else(|e| e.into_inner()).push(&line);
            }
        }
    }
}

/// The first and the newest bytes of an output, whole lines at a time: the head holds
/// what a command says first (the simulator's summary), the tail how it ended.
#[derive(Default)]
struct Tail {
    head: Vec<u8>,
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: usize,
}

impl Tail {
    fn push(&mut self, line: &[u8]) {
        if self.head.len() + line.len() <= HEAD_BYTES && self.lines.is_empty() {
            self.head.extend_from_slice(line);
            return;
        }
        self.lines.push_back(line.to_vec());
        self.bytes += line.len();
        while self.bytes > KEEP_BYTES - HEAD_BYTES && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.dropped += old.len();
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!(
                "[... {} bytes of output dropped ...]\n",
                self.dropped
            ));
        }
        for l in &self.lines {
            s.push_str(&String::from_utf8_lossy(l));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_first_and_the_newest_lines_within_its_bound() {
        let mut t = Tail::default();
        t.push(b"summary\n");
        let line = vec![b'x'; 1000];
        for _ in 0..(KEEP_BYTES / 1000 + 50) {
            t.push(&line);
        }
        t.push(b"last\n");
        let text = t.text();
        assert!(text.starts_with("summary\n"), "the head stays");
        assert!(text.contains("bytes of output dropped ...]"));
        assert!(text.ends_with("last\n"));
        assert!(t.head.len() + t.bytes <= KEEP_BYTES);
    }
}
