//! Building a [`History`] event by event: pairing each completion with its invoke and
//! enforcing Jepsen's rules on processes and the value shapes of Knossos's functions.
//! The parsers, the generator and tests all build histories here.
//!
//! Line order is the real-time order. Times are kept for plots; when they go backwards
//! from one client event to the next (Jepsen stamps them from many threads) the history
//! is still read in line order, and one [`Warning`] says where it first happened.

use crate::error::ErrorKind;
use crate::history::{
    Actor, Event, EventType, Function, History, Key, Operation, OtherEvent, Outcome, Process,
    Warning,
};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::sync::Arc;

/// One event as read, before pairing: the fields exactly as the line has them.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// 1-based line in the source.
    pub line: usize,
    pub index: Option<u64>,
    pub time: Option<u64>,
    pub process: Process,
    pub kind: EventType,
    /// The `f` as a function (for a non-client event, any name).
    pub f: Function,
    pub key: Option<Key>,
    /// `None` when the event has no `value` field at all (distinct from null).
    pub value: Option<Value>,
    /// The `error` field: why a completion failed or is indeterminate.
    pub error: Option<Arc<str>>,
}

/// What a client process is doing.
#[derive(Clone)]
enum ProcState {
    /// Its operation `op` (invoked on `line`) has not completed yet.
    Outstanding { op: usize, line: usize },
    /// Its last operation ended with `info`: the process may never be used again.
    Crashed { line: usize },
}

/// Where times first went backwards, and how often they did.
#[derive(Clone)]
struct Disorder {
    line: usize,
    time: u64,
    previous: u64,
    count: usize,
}

/// Pairs events into a [`History`]; see the module doc.
#[derive(Clone, Default)]
pub struct Builder {
    events: Vec<Event>,
    ops: Vec<Operation>,
    procs: FxHashMap<u64, ProcState>,
    /// Whether client events carry times: decided by the first client event.
    timed: Option<bool>,
    last_time: u64,
    disorder: Option<Disorder>,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    /// Room for about `events` events.
    pub fn with_capacity(events: usize) -> Self {
        Builder {
            events: Vec::with_capacity(events),
            ops: Vec::with_capacity(events / 2 + 1),
            ..Builder::default()
        }
    }

    /// Events added so far.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Adds the next event (in line order); for a client event, returns the position
    /// of its operation in `History::ops`. The error is about this event's line.
    pub fn push(&mut self, d: RawEvent) -> Result<Option<usize>, ErrorKind> {
        let pos = self.events.len();
        let index = d.index.unwrap_or(pos as u64);
        let p = match d.process {
            Process::Client(p) => p,
            Process::Other(process) => {
                // Nemesis and other non-client events are kept but not paired.
                self.events.push(Event {
                    index,
                    time: d.time,
                    line: d.line,
                    kind: d.kind,
                    actor: Actor::Other(Box::new(OtherEvent {
                        process,
                        f: d.f.name().to_string(),
                        value: d.value.unwrap_or(Value::Null),
                        error: d.error,
                    })),
                });
                return Ok(None);
            }
        };
        let at = self.instant(d.time, pos, d.line)?;
        let (time, line, kind) = (d.time, d.line, d.kind);
        let op = match kind {
            EventType::Invoke => self.invoke(p, d, at, pos)?,
            _ => self.complete(p, d, at, pos)?,
        };
        self.events.push(Event {
            index,
            time,
            line,
            kind,
            actor: Actor::Client { process: p, op },
        });
        Ok(Some(op))
    }

    /// The history built so far. Invokes never completed stay `info`.
    pub fn finish(self) -> History {
        let mut warnings = Vec::new();
        if let Some(d) = self.disorder {
            let more = match d.count {
                1 => String::new(),
                n => format!(" ({n} lines in all)"),
            };
            warnings.push(Warning {
                line: d.line,
                message: format!(
                    "time {} is earlier than the previous client event's time {}{more}; \
                     line order is the real-time order, times are only drawn",
                    d.time, d.previous
                ),
            });
        }
        History {
            events: self.events,
            ops: self.ops,
            warnings,
        }
    }

    /// The instant recorded for plots: the time, or the position in untimed histories.
    fn instant(&mut self, time: Option<u64>, pos: usize, line: usize) -> Result<u64, ErrorKind> {
        let at = match (self.timed, time) {
            (None, t) => {
                self.timed = Some(t.is_some());
                t.unwrap_or(pos as u64)
            }
            (Some(true), Some(t)) => {
                if t < self.last_time {
                    match &mut self.disorder {
                        Some(d) => d.count += 1,
                        None => {
                            self.disorder = Some(Disorder {
                                line,
                                time: t,
                                previous: self.last_time,
                                count: 1,
                            })
                        }
                    }
                }
                t
            }
            (Some(false), None) => pos as u64,
            (Some(true), None) => return Err(ErrorKind::MixedTimes("this one has none")),
            (Some(false), Some(_)) => {
                return Err(ErrorKind::MixedTimes(
                    "this one has one, earlier ones did not",
                ));
            }
        };
        self.last_time = at;
        Ok(at)
    }

    /// The operation process `p` has open and the line of its invoke; an error if the
    /// process crashed (ended with `info`) before.
    fn outstanding(&self, p: u64) -> Result<Option<(usize, usize)>, ErrorKind> {
        match self.procs.get(&p) {
            Some(ProcState::Outstanding { op, line }) => Ok(Some((*op, *line))),
            Some(ProcState::Crashed { line }) => Err(ErrorKind::ReusedAfterInfo {
                process: p,
                info_line: *line,
            }),
            None => Ok(None),
        }
    }

    /// Client `p` invokes `d` (at plot instant `at`, event position `pos`).
    fn invoke(&mut self, p: u64, d: RawEvent, at: u64, pos: usize) -> Result<usize, ErrorKind> {
        if let Some((_, first_line)) = self.outstanding(p)? {
            return Err(ErrorKind::TwoOutstanding {
                process: p,
                first_line,
            });
        }
        let input = invoke_input(&d.f, d.value)?;
        let id = self.ops.len();
        self.ops.push(Operation {
            id,
            process: p,
            f: d.f,
            key: d.key,
            input,
            output: Value::Null,
            outcome: Outcome::Info,
            call: at,
            ret: None,
            error: None,
            invoke_event: pos,
            complete_event: None,
        });
        self.procs.insert(
            p,
            ProcState::Outstanding {
                op: id,
                line: d.line,
            },
        );
        Ok(id)
    }

    /// Client `p` completes its open operation with `d`.
    fn complete(&mut self, p: u64, d: RawEvent, at: u64, pos: usize) -> Result<usize, ErrorKind> {
        let RawEvent {
            kind,
            f,
            key,
            value,
            line,
            error,
            ..
        } = d;
        let Some((id, invoke_line)) = self.outstanding(p)? else {
            return Err(ErrorKind::CompletionWithoutInvoke { process: p });
        };
        let op = &mut self.ops[id];
        if op.f != f {
            return Err(ErrorKind::Mismatch {
                invoke_line,
                reason: format!("f {:?} completes an invoke of {:?}", f.name(), op.f.name()),
            });
        }
        if let Some(k) = &key
            && op.key.as_ref() != Some(k)
        {
            let was = op
                .key
                .as_ref()
                .map_or("none".to_string(), |k| format!("{k:?}"));
            return Err(ErrorKind::Mismatch {
                invoke_line,
                reason: format!("key {k:?} completes an invoke on key {was}"),
            });
        }
        match kind {
            EventType::Ok => {
                if value.is_none() && needs_output(&f) {
                    return Err(ErrorKind::MissingField("value"));
                }
                op.outcome = Outcome::Ok;
                op.output = value.unwrap_or(Value::Null);
                op.ret = Some(at);
                self.procs.remove(&p);
            }
            EventType::Fail => {
                op.outcome = Outcome::Fail;
                op.ret = Some(at);
                self.procs.remove(&p);
            }
            _ => {
                // Info: indeterminate; the op stays open forever.
                op.outcome = Outcome::Info;
                self.procs.insert(p, ProcState::Crashed { line });
            }
        }
        op.error = error;
        op.complete_event = Some(pos);
        Ok(id)
    }
}

/// Functions whose `ok` must say what they returned.
fn needs_output(f: &Function) -> bool {
    matches!(f, Function::Read | Function::Dequeue)
}

/// Checks the invoke's value against the shape its function needs.
fn invoke_input(f: &Function, value: Option<Value>) -> Result<Value, ErrorKind> {
    match f {
        // A read or dequeue asks; what it returns comes with the completion.
        Function::Read | Function::Dequeue => Ok(Value::Null),
        Function::Write | Function::Add | Function::Enqueue => {
            value.ok_or(ErrorKind::MissingField("value"))
        }
        Function::Cas => match value {
            None => Err(ErrorKind::MissingField("value")),
            Some(Value::Array(a)) if a.len() == 2 => Ok(Value::Array(a)),
            Some(other) => Err(ErrorKind::BadField {
                field: "value",
                reason: format!("a cas needs a pair [from, to], found {other}"),
            }),
        },
        Function::Append => match value {
            None => Err(ErrorKind::MissingField("value")),
            Some(Value::String(s)) => Ok(Value::String(s)),
            Some(other) => Err(ErrorKind::BadField {
                field: "value",
                reason: format!("an append needs a string, found {other}"),
            }),
        },
        Function::Acquire | Function::Release | Function::Other(_) => {
            Ok(value.unwrap_or(Value::Null))
        }
    }
}
