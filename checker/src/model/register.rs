//! Registers and the key-value store, as plain definitions on JSON values. Checks of
//! these models run on a faster engine (interned values, the unique-value cuts); these
//! definitions are what it is tested against, and what explanations replay.
//!
//! A register (and a kv key) holds a JSON value; null means absent, which is also the
//! state before the history unless an initial value is given. `knossos` makes a read of
//! null constrain nothing, as Knossos's register models read it. In the kv model an
//! append concatenates strings: appending to an absent key starts from the empty
//! string, and appending to a value that is not a string cannot take effect. A read of
//! `""` is a read of the empty string, never of an absent key, for every key alike;
//! for stores that read missing keys as `""`, give the initial value `""`.

use super::{Model, refuse};
use crate::history::{Function, Operation, Outcome};
use serde_json::Value;

/// The step shared by the three models (the caller has validated the function).
fn step(state: &Value, op: &Operation, knossos: bool) -> Option<Value> {
    match op.f {
        Function::Read => {
            let unknown = op.outcome == Outcome::Info || (knossos && op.output.is_null());
            (unknown || op.output == *state).then(|| state.clone())
        }
        Function::Write => Some(op.input.clone()),
        Function::Cas => match op.input.as_array().map(Vec::as_slice) {
            Some([from, to]) => (from == state).then(|| to.clone()),
            _ => None,
        },
        Function::Append => match (state, &op.input) {
            (Value::Null, Value::String(s)) => Some(Value::String(s.clone())),
            (Value::String(a), Value::String(b)) => Some(Value::String(format!("{a}{b}"))),
            _ => None,
        },
        _ => None,
    }
}

/// About the bytes a value holds.
pub(crate) fn state_bytes(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::String(s) => s.len(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            other => other.to_string().len(),
        }
}

macro_rules! register_model {
    ($name:ident, $label:literal, $takes:literal, $($f:pat_param)|+) => {
        #[doc = concat!("The ", $label, " model: ", $takes, ".")]
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct $name {
            /// The value of every key before the history (null: absent).
            pub initial: Value,
            /// A read of null constrains nothing.
            pub knossos: bool,
        }

        impl Model for $name {
            type State = ValueState;

            fn name(&self) -> &str {
                $label
            }

            fn validate(&self, op: &Operation) -> Result<(), String> {
                match op.f {
                    $($f)|+ => Ok(()),
                    _ => refuse($label, op, $takes),
                }
            }

            fn init(&self) -> ValueState {
                ValueState(self.initial.clone())
            }

            fn step(&self, state: &ValueState, op: &Operation) -> Option<ValueState> {
                step(&state.0, op, self.knossos).map(ValueState)
            }

            fn is_read_only(&self, op: &Operation) -> bool {
                op.f == Function::Read
            }

            fn describe(&self, state: &ValueState) -> Value {
                state.0.clone()
            }

            fn state_bytes(&self, state: &ValueState) -> usize {
                state_bytes(&state.0)
            }
        }
    };
}

register_model!(
    Register,
    "register",
    "read and write",
    Function::Read | Function::Write
);
register_model!(
    CasRegister,
    "cas-register",
    "read, write and cas",
    Function::Read | Function::Write | Function::Cas
);
register_model!(
    Kv,
    "kv",
    "read, write, cas and append",
    Function::Read | Function::Write | Function::Cas | Function::Append
);

/// A JSON value as a model state: equality is JSON equality, and the hash agrees with
/// it (the canonical text's hash; object keys are sorted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueState(pub Value);

impl std::hash::Hash for ValueState {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match &self.0 {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            // Equal numbers have the same representation (non-negative integers are
            // always u64, negative ones i64, the rest f64).
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => (2u8, u).hash(h),
                (_, Some(i)) => (3u8, i).hash(h),
                // 0.0 and -0.0 are equal.
                _ => (4u8, n.as_f64().filter(|f| *f != 0.0).map(f64::to_bits)).hash(h),
            },
            Value::String(s) => (5u8, s).hash(h),
            other => (6u8, other.to_string()).hash(h),
        }
    }
}
