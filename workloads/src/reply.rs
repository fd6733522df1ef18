//! How an operation on our node ended: the one classifier of node answers, for
//! simulated and real runs alike.
//!
//! A real run gets the node's HTTP status and JSON body; the simulator gets a
//! simulated replica's [`node::replica::Response`] and turns it into the same status
//! and body with the node's own mapping ([`node::server::api::kv_reply`], see
//! [`replica_answer`]). Both then meet here, in [`classify`], so an answer is
//! decided by the same code whichever way it came. The outcomes follow
//! docs/design.md ("HTTP API", "Outcomes"):
//!
//! - 200: `ok` (a read's value is the body's `value`; a 200 read without one says
//!   nothing we could check: `info`, `bad_response`).
//! - 404 on a read: `ok` with null (the key is absent).
//! - 409 on a cas: `fail`, `cas_mismatch`, with the key's `current` value.
//! - 503 and every 4xx: `fail` (refused before consensus, certainly not applied).
//! - 504 and any other status: `info` (the operation may or may not take effect).
//! - No answer: `fail` when the request certainly never arrived (connection
//!   refused), else `info` (a timeout, a connection lost).
//!
//! The error word of a completion is the body's `error` when it has one.

use crate::ops::{Op, OpKind};
use checker::history::EventType;
use node::kv::KvOp;
use node::replica::Response;
use serde_json::Value;

/// How one operation ended, as the history records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub kind: EventType,
    pub value: Value,
    /// Why it failed, or why its outcome is unknown.
    pub error: Option<String>,
    /// For a cas that did not match: the key's current value, when the reply said.
    pub current: Option<Value>,
}

impl Completion {
    pub fn new(kind: EventType, value: Value, error: Option<String>) -> Completion {
        Completion {
            kind,
            value,
            error,
            current: None,
        }
    }
}

/// A node's answer to one operation, however it travelled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer<'a> {
    /// The node answered with this HTTP status and JSON body (`Null` when the body
    /// was empty or not JSON).
    Reply { status: u16, body: &'a Value },
    /// No answer, and the request certainly never reached the node. The word is the
    /// history's error.
    NotSent(&'a str),
    /// No answer, and the node may or may not have handled the request (a timeout, a
    /// connection lost after the request was written).
    Lost(&'a str),
}

/// The node's HTTP status and body for a replica's answer to `op`, as a client of
/// the node would receive it (the mapping the node's server itself answers with).
pub fn replica_answer(op: &KvOp, response: &Response) -> (u16, Value) {
    let (status, body) = node::server::api::kv_reply(op, response.clone());
    (status.as_u16(), body)
}

/// Decides how `op` ended from the node's answer.
pub fn classify(op: &Op, answer: Answer<'_>) -> Completion {
    let input = op.input();
    let error = |body: &Value, fallback: &str| {
        Some(
            body.get("error")
                .and_then(Value::as_str)
                .unwrap_or(fallback)
                .to_string(),
        )
    };
    let is_read = op.kind() == OpKind::Read;
    match answer {
        Answer::Reply { status: 200, body } => match (is_read, body.get("value")) {
            (true, Some(v)) => Completion::new(EventType::Ok, v.clone(), None),
            (true, None) => Completion::new(
                EventType::Info,
                Value::Null,
                Some("bad_response".to_string()),
            ),
            (false, _) => Completion::new(EventType::Ok, input, None),
        },
        Answer::Reply { status: 404, .. } if is_read => {
            Completion::new(EventType::Ok, Value::Null, None)
        }
        Answer::Reply { status: 409, body } if op.kind() == OpKind::Cas => Completion {
            kind: EventType::Fail,
            value: input,
            error: error(body, "cas_mismatch"),
            current: body.get("current").cloned(),
        },
        Answer::Reply { status: 504, body } => {
            Completion::new(EventType::Info, input, error(body, "timeout"))
        }
        // 503 and every 4xx: refused before consensus, certainly not applied.
        Answer::Reply { status, body } if status == 503 || (400..500).contains(&status) => {
            Completion::new(
                EventType::Fail,
                input,
                error(body, &format!("http_{status}")),
            )
        }
        // Anything else from the server (500, ...) promises nothing either way.
        Answer::Reply { status, body } => Completion::new(
            EventType::Info,
            input,
            error(body, &format!("http_{status}")),
        ),
        Answer::NotSent(why) => Completion::new(EventType::Fail, input, Some(why.to_string())),
        Answer::Lost(why) => Completion::new(EventType::Info, input, Some(why.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::kv::KvResult;
    use serde_json::json;

    fn reply(op: &Op, status: u16, body: Value) -> Completion {
        classify(
            op,
            Answer::Reply {
                status,
                body: &body,
            },
        )
    }

    const READ: Op = Op::Read { key: 0 };

    fn cas() -> Op {
        Op::Cas {
            key: 0,
            from: json!(1),
            to: 2,
        }
    }

    #[test]
    fn outcomes_follow_the_error_contract() {
        let c = reply(&READ, 200, json!({"key":"k0","value":7}));
        assert_eq!(c, Completion::new(EventType::Ok, json!(7), None));
        let c = reply(&READ, 200, json!({"key":"k0"}));
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (EventType::Info, Some("bad_response"))
        );
        let c = reply(&READ, 404, json!({"error":"not_found"}));
        assert_eq!(c, Completion::new(EventType::Ok, Value::Null, None));
        let cas = cas();
        let c = reply(&cas, 409, json!({"error":"cas_mismatch","current":3}));
        assert_eq!(c.kind, EventType::Fail);
        assert_eq!(c.error.as_deref(), Some("cas_mismatch"));
        assert_eq!(c.current, Some(json!(3)));
        assert_eq!(c.value, json!([1, 2]));
        assert_eq!(reply(&cas, 503, Value::Null).kind, EventType::Fail);
        assert_eq!(
            reply(&cas, 503, Value::Null).error.as_deref(),
            Some("http_503")
        );
        assert_eq!(reply(&cas, 400, Value::Null).kind, EventType::Fail);
        assert_eq!(reply(&cas, 504, Value::Null).kind, EventType::Info);
        assert_eq!(reply(&cas, 500, Value::Null).kind, EventType::Info);
        // A 409 on anything but a cas is one more refusal.
        assert_eq!(reply(&READ, 409, Value::Null).kind, EventType::Fail);
        let c = classify(&cas, Answer::NotSent("connection_refused"));
        assert_eq!(c.kind, EventType::Fail);
        let c = classify(&cas, Answer::Lost("timeout"));
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (EventType::Info, Some("timeout"))
        );
    }

    /// A replica's answers, read through the node's own mapping, end as the sim
    /// always counted them (ok, fail or info), with the node's error words.
    #[test]
    fn replica_answers_are_classified_as_the_node_answers_them() {
        let cases = [
            (
                READ,
                Response::Done(KvResult::Value(Some(json!(5)))),
                EventType::Ok,
                None,
            ),
            (
                READ,
                Response::Done(KvResult::Value(None)),
                EventType::Ok,
                None,
            ),
            (
                Op::Write { key: 1, value: 9 },
                Response::Done(KvResult::Value(Some(json!(9)))),
                EventType::Ok,
                None,
            ),
            (
                cas(),
                Response::Done(KvResult::CasMismatch {
                    current: Some(json!(4)),
                }),
                EventType::Fail,
                Some("cas_mismatch"),
            ),
            (
                cas(),
                Response::NotLeader { leader: Some(2) },
                EventType::Fail,
                Some("unavailable"),
            ),
            (
                cas(),
                Response::Rejected {
                    reason: "busy".into(),
                },
                EventType::Fail,
                Some("unavailable"),
            ),
            (
                cas(),
                Response::Invalid {
                    reason: "skipped".into(),
                },
                EventType::Fail,
                Some("bad_request"),
            ),
            (
                cas(),
                Response::Indeterminate,
                EventType::Info,
                Some("timeout"),
            ),
        ];
        for (op, response, kind, error) in cases {
            let (status, body) = replica_answer(&op.kv_op(), &response);
            let c = classify(
                &op,
                Answer::Reply {
                    status,
                    body: &body,
                },
            );
            assert_eq!((c.kind, c.error.as_deref()), (kind, error), "{response:?}");
            if kind == EventType::Ok {
                let expected = match &op {
                    Op::Read { .. } => match response {
                        Response::Done(KvResult::Value(v)) => v.unwrap_or(Value::Null),
                        _ => Value::Null,
                    },
                    _ => op.input(),
                };
                assert_eq!(c.value, expected);
            }
        }
    }
}
