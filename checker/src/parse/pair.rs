//! Pairing and validation: turns drafts (events as read) into a [`History`], enforcing
//! Jepsen's rules on processes and the value shapes the models rely on.

use super::Draft;
use crate::error::{ErrorKind, HistoryError};
use crate::history::{Event, EventType, Function, History, Operation, Outcome, Process};
use rustc_hash::FxHashMap;
use serde_json::Value;

/// What a client process is doing.
enum ProcState {
    /// Its operation `op` (invoked on `line`) has not completed yet.
    Outstanding { op: usize, line: usize },
    /// Its last operation ended with `info`: the process may never be used again.
    Crashed { line: usize },
}

/// The function an `f` names, with the `get`/`put` aliases.
pub(crate) fn function(f: &str) -> Result<Function, ErrorKind> {
    match f {
        "read" | "get" => Ok(Function::Read),
        "write" | "put" => Ok(Function::Write),
        "cas" => Ok(Function::Cas),
        "append" => Ok(Function::Append),
        other => Err(ErrorKind::UnknownFunction(other.to_string())),
    }
}

pub(crate) fn pair(drafts: Vec<Draft>, name: &str) -> Result<History, HistoryError> {
    let mut events = Vec::with_capacity(drafts.len());
    let mut ops: Vec<Operation> = Vec::with_capacity(drafts.len() / 2 + 1);
    let mut procs: FxHashMap<u64, ProcState> = FxHashMap::default();
    // Whether client events carry times: decided by the first client event.
    let mut timed: Option<bool> = None;
    let mut last_time = 0u64;

    for (pos, d) in drafts.into_iter().enumerate() {
        let line = d.line;
        let err = |kind: ErrorKind| HistoryError::new(name, line, kind);
        let event = Event {
            index: d.index.unwrap_or(pos as u64),
            time: d.time,
            process: d.process,
            kind: d.kind,
            f: d.f,
            key: d.key,
            value: d.value.clone().unwrap_or(Value::Null),
            error: d.error,
            line,
        };
        let Process::Client(p) = event.process else {
            // Nemesis and other non-client events are kept but not paired.
            events.push(event);
            continue;
        };
        let func = function(&event.f).map_err(err)?;
        let at = match (timed, event.time) {
            (None, t) => {
                timed = Some(t.is_some());
                t.unwrap_or(pos as u64)
            }
            (Some(true), Some(t)) => {
                if t < last_time {
                    return Err(err(ErrorKind::TimeBackwards {
                        time: t,
                        previous: last_time,
                    }));
                }
                t
            }
            (Some(false), None) => pos as u64,
            (Some(true), None) => return Err(err(ErrorKind::MixedTimes("this one has none"))),
            (Some(false), Some(_)) => {
                return Err(err(ErrorKind::MixedTimes(
                    "this one has one, earlier ones did not",
                )));
            }
        };
        last_time = at;

        match event.kind {
            EventType::Invoke => {
                match procs.get(&p) {
                    Some(ProcState::Outstanding {
                        line: first_line, ..
                    }) => {
                        return Err(err(ErrorKind::TwoOutstanding {
                            process: p,
                            first_line: *first_line,
                        }));
                    }
                    Some(ProcState::Crashed { line: info_line }) => {
                        return Err(err(ErrorKind::ReusedAfterInfo {
                            process: p,
                            info_line: *info_line,
                        }));
                    }
                    None => {}
                }
                let input = invoke_input(func, d.value).map_err(err)?;
                let id = ops.len();
                ops.push(Operation {
                    id,
                    process: p,
                    f: func,
                    key: event.key.clone(),
                    input,
                    output: Value::Null,
                    outcome: Outcome::Info,
                    call: at,
                    ret: None,
                    invoke_event: pos,
                    complete_event: None,
                });
                procs.insert(p, ProcState::Outstanding { op: id, line });
            }
            kind => {
                let (id, invoke_line) = match procs.get(&p) {
                    Some(ProcState::Outstanding { op, line }) => (*op, *line),
                    Some(ProcState::Crashed { line: info_line }) => {
                        return Err(err(ErrorKind::ReusedAfterInfo {
                            process: p,
                            info_line: *info_line,
                        }));
                    }
                    None => return Err(err(ErrorKind::CompletionWithoutInvoke { process: p })),
                };
                let op = &mut ops[id];
                if op.f != func {
                    return Err(err(ErrorKind::Mismatch {
                        invoke_line,
                        reason: format!("f {:?} completes an invoke of {:?}", event.f, op.f),
                    }));
                }
                if let Some(k) = &event.key
                    && op.key.as_ref() != Some(k)
                {
                    return Err(err(ErrorKind::Mismatch {
                        invoke_line,
                        reason: format!("key {k:?} completes an invoke on key {:?}", op.key),
                    }));
                }
                match kind {
                    EventType::Ok => {
                        if func == Function::Read && d.value.is_none() {
                            return Err(err(ErrorKind::MissingField("value")));
                        }
                        op.outcome = Outcome::Ok;
                        op.output = d.value.unwrap_or(Value::Null);
                        op.ret = Some(at);
                        procs.remove(&p);
                    }
                    EventType::Fail => {
                        op.outcome = Outcome::Fail;
                        op.ret = Some(at);
                        procs.remove(&p);
                    }
                    _ => {
                        // Info: indeterminate; the op stays open forever.
                        op.outcome = Outcome::Info;
                        procs.insert(p, ProcState::Crashed { line });
                    }
                }
                op.complete_event = Some(pos);
            }
        }
        events.push(event);
    }
    // Invokes in event order with non-decreasing times are already sorted by call.
    debug_assert!(ops.windows(2).all(|w| w[0].call <= w[1].call));
    Ok(History { events, ops })
}

/// Checks the invoke's value against the shape its function needs.
fn invoke_input(func: Function, value: Option<Value>) -> Result<Value, ErrorKind> {
    match func {
        Function::Read => Ok(Value::Null),
        Function::Write => value.ok_or(ErrorKind::MissingField("value")),
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
    }
}
