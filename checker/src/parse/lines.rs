//! Bounded line reading: one reused buffer, a length limit, UTF-8 checked per line.

use crate::error::{ErrorKind, HistoryError};
use std::io::{BufRead, Read};

/// Yields `(line_number, text)` with the line ending removed.
pub(crate) struct Lines<R> {
    reader: R,
    name: String,
    limit: usize,
    line_no: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, name: &str, limit: usize) -> Self {
        Lines {
            reader,
            name: name.to_string(),
            limit,
            line_no: 0,
            buf: Vec::with_capacity(256),
            done: false,
        }
    }

    /// The next line, or `None` at the end of the input.
    pub fn next_line(&mut self) -> Result<Option<(usize, &str)>, HistoryError> {
        if self.done {
            return Ok(None);
        }
        self.buf.clear();
        self.line_no += 1;
        let max = self.limit as u64 + 1;
        let n = (&mut self.reader)
            .take(max)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| self.err(ErrorKind::Io(e.to_string())))?;
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n as u64 == max {
            return Err(self.err(ErrorKind::LineTooLong { limit: self.limit }));
        }
        let mut bytes = &self.buf[..];
        if self.line_no == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes = &bytes[3..];
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some((self.line_no, text))),
            Err(_) => Err(HistoryError::new(
                &self.name,
                self.line_no,
                ErrorKind::NotUtf8,
            )),
        }
    }

    fn err(&self, kind: ErrorKind) -> HistoryError {
        HistoryError::new(&self.name, self.line_no, kind)
    }
}
