//! Writing to stdout when the reader may stop early (`checker check --json | head`):
//! a closed pipe ends the output quietly, it is not an error of the check.

use std::io::Write;

/// Writes `text` to stdout; a reader that went away is not an error.
pub(crate) fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// [`print`] with a newline.
pub(crate) fn println(text: &str) -> std::io::Result<()> {
    print(&format!("{text}\n"))
}
