//! Runs one scenario's command as a child of this executable, passing its output
//! through to ours as it comes and keeping its tail for the scenario's log and the
//! JUnit file.

use anyhow::Context;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Bytes of a child's output kept (the newest).
const KEEP_BYTES: usize = 256 << 10;

/// What one child did.
pub struct Finished {
    /// Its exit status (-1 when a signal ended it).
    pub code: i32,
    /// The newest [`KEEP_BYTES`] of its stdout and stderr, interleaved as they came.
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

/// The newest bytes of an output, whole lines at a time.
#[derive(Default)]
struct Tail {
    lines: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: bool,
}

impl Tail {
    fn push(&mut self, line: &[u8]) {
        self.lines.push_back(line.to_vec());
        self.bytes += line.len();
        while self.bytes > KEEP_BYTES && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.dropped = true;
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        if self.dropped {
            s.push_str("[... earlier output dropped ...]\n");
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
    fn the_tail_keeps_the_newest_lines_within_its_bound() {
        let mut t = Tail::default();
        let line = vec![b'x'; 1000];
        for _ in 0..(KEEP_BYTES / 1000 + 50) {
            t.push(&line);
        }
        t.push(b"last\n");
        let text = t.text();
        assert!(text.starts_with("[... earlier output dropped ...]"));
        assert!(text.ends_with("last\n"));
        assert!(t.bytes <= KEEP_BYTES);
    }
}
