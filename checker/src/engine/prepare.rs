//! The fast engines of the register, cas-register and kv models: turns one key's
//! operations into what the search runs on: drops what cannot matter, makes
//! indeterminate operations cheap, interns values and picks the engine. What these
//! engines decide is what the plain definitions in [`crate::model`] define; the tests
//! check the two against each other and against a brute-force oracle.
//!
//! The reductions, and why each keeps the verdict:
//!
//! - A `fail` operation did not happen: dropped.
//! - An `info` read returned nothing we know: it may be linearized anywhere and changes
//!   no state, so it constrains nothing: dropped. With `knossos`, an ok read of `null`
//!   constrains nothing either (Knossos's register models): dropped.
//! - An `info` write, cas or append whose written value nobody observed (no ok read
//!   returns it, or, for appends and puts of the append model, contains it, where an
//!   absent value counts as the empty string it extends to; no cas compares against
//!   it): dropped. Argument: take any linearization that includes it.
//!   Between it and the next operation that replaces the state (a write, a cas, a put)
//!   the state holds (or, for appends, contains) its value; a read or cas there would
//!   observe the value, and none does, so only state-replacing operations or further
//!   appends, whose results are in turn never read, follow it before the state is
//!   replaced. Removing it changes no observed result, and leaving an indeterminate
//!   operation out is always allowed. So a linearization exists with it iff one exists
//!   without it.
//! - An `info` operation whose written value is produced by no other operation and is
//!   observed by an ok operation (a read returned it, a cas compared against it, a read
//!   of the append model contains it): it certainly took effect, and before each of
//!   those observers returned. It becomes a required operation whose return is the
//!   earliest return among its observers, so it no longer stays pending forever.
//! - What remains of `info` stays pending until the end (return at +infinity) and may be
//!   left out by the search.

use super::trie::{IMPOSSIBLE, TrieModel};
use super::values::{NULL, ValueModel, Values, Waits};
use super::{Engine, F, NEVER, SOp};
use crate::history::{Function, Operation, Outcome};
use crate::model::ValueState;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// A key ready for the search.
pub enum Prepared {
    Value(ValueModel, Vec<SOp>),
    Trie(TrieModel, Vec<SOp>),
}

/// How a key is prepared.
#[derive(Clone, Debug)]
pub struct PrepareOptions {
    pub initial: Value,
    pub knossos: bool,
    /// Use what unique values allow (overwritten-value rule, trie model, info bounds).
    pub fast_path: bool,
}

/// True if this key uses append semantics (an append that may take effect).
pub fn append_mode(ops: &[&Operation]) -> bool {
    ops.iter()
        .any(|o| o.f == Function::Append && o.outcome != Outcome::Fail)
}

/// What a value contributes to the strings an append builds from it: an absent value
/// is extended as the empty string.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Null => Some(""),
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn cas_pair(v: &Value) -> Option<(&Value, &Value)> {
    match v {
        Value::Array(a) if a.len() == 2 => Some((&a[0], &a[1])),
        _ => None,
    }
}

/// The value an operation writes, if it writes one.
fn written(op: &Operation) -> Option<&Value> {
    match op.f {
        Function::Write | Function::Append => Some(&op.input),
        Function::Cas => cas_pair(&op.input).map(|(_, to)| to),
        _ => None,
    }
}

/// Prepares one key's operations (in history order).
pub fn prepare(ops: &[&Operation], opts: &PrepareOptions) -> Prepared {
    let append = append_mode(ops);
    let initial = &opts.initial;
    // Drop fail ops, info reads and (knossos) null reads.
    let kept: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| match (o.outcome, &o.f) {
            (Outcome::Fail, _) => false,
            (Outcome::Info, Function::Read) => false,
            (Outcome::Ok, Function::Read) => !(opts.knossos && o.output.is_null()),
            _ => true,
        })
        .collect();
    // Everything an operation can observe: read results and cas comparands.
    let seen: Vec<&Value> = kept
        .iter()
        .filter_map(|o| match o.f {
            Function::Read => Some(&o.output),
            Function::Cas => cas_pair(&o.input).map(|(f, _)| f),
            _ => None,
        })
        .collect();
    let seen_set: FxHashSet<ValueState> = seen.iter().map(|v| ValueState((*v).clone())).collect();
    let observed = |v: &Value| -> bool {
        if seen_set.contains(&ValueState(v.clone())) {
            return true;
        }
        // In the append model a value also shows inside every string built on it.
        match (append, text(v)) {
            (true, Some(t)) => seen
                .iter()
                .any(|r| matches!(r, Value::String(r) if r.contains(t))),
            _ => false,
        }
    };
    // In the append model an append fails on a state that is neither a string nor
    // absent, so it observes the state too: unobserved writes are only dropped when
    // every state is a string or absent.
    let all_strings = !append
        || (text(initial).is_some()
            && kept.iter().all(|o| match o.f {
                Function::Read => true,
                Function::Cas => {
                    cas_pair(&o.input).is_some_and(|(a, b)| text(a).is_some() && text(b).is_some())
                }
                _ => text(&o.input).is_some(),
            }));
    let kept: Vec<&Operation> = kept
        .into_iter()
        .filter(|o| o.outcome != Outcome::Info || !all_strings || written(o).is_some_and(&observed))
        .collect();
    if opts.fast_path
        && append
        && let Some(p) = prepare_trie(&kept, initial)
    {
        return p;
    }
    prepare_values(&kept, initial, append, opts.fast_path)
}

fn base_op(o: &Operation, f: F) -> SOp {
    SOp {
        id: o.id,
        call: o.invoke_event as u64,
        ret: completion(o),
        f,
        optional: o.outcome != Outcome::Ok,
        observer: f.is_observer(),
    }
}

/// Where an ok operation returned; [`NEVER`] for one that may take effect later.
fn completion(o: &Operation) -> u64 {
    match (o.outcome, o.complete_event) {
        (Outcome::Ok, Some(c)) => c as u64,
        _ => NEVER,
    }
}

fn prepare_values(kept: &[&Operation], initial: &Value, append: bool, fast: bool) -> Prepared {
    let mut values = Values::new();
    let init = values.intern(initial);
    let mut ops = Vec::with_capacity(kept.len());
    for o in kept {
        let f = match o.f {
            Function::Read => F::Read(values.intern(&o.output)),
            Function::Write => F::Write(values.intern(&o.input)),
            Function::Append => F::Append(values.intern(&o.input)),
            Function::Cas => match cas_pair(&o.input) {
                Some((a, b)) => F::Cas(values.intern(a), values.intern(b)),
                // A malformed cas can never take effect: compare against a value no state
                // holds.
                None => F::Cas(values.intern(&Value::String("\u{0}malformed".into())), NULL),
            },
            // The models validated the functions; nothing else reaches here.
            _ => F::Cas(
                values.intern(&Value::String("\u{0}unsupported".into())),
                NULL,
            ),
        };
        ops.push(base_op(o, f));
    }
    if fast && !append {
        bound_observed_info(&mut ops, init);
    }
    let waits = (fast && !append).then(|| Waits::new(values.len(), &ops));
    Prepared::Value(
        ValueModel {
            values,
            init,
            waits,
        },
        ops,
    )
}

/// Register keys: an info op whose value only it produces and that an ok op observed
/// took effect before that observer returned (see the module doc).
fn bound_observed_info(ops: &mut [SOp], init: u32) {
    let mut producers: FxHashMap<u32, usize> = FxHashMap::default();
    for op in ops.iter() {
        if let F::Write(v) | F::Cas(_, v) = op.f {
            *producers.entry(v).or_default() += 1;
        }
    }
    let mut first_seen: FxHashMap<u32, u64> = FxHashMap::default();
    for op in ops.iter().filter(|o| !o.optional) {
        if let F::Read(v) | F::Cas(v, _) = op.f {
            let e = first_seen.entry(v).or_insert(NEVER);
            *e = (*e).min(op.ret);
        }
    }
    for op in ops.iter_mut().filter(|o| o.optional) {
        if let F::Write(v) | F::Cas(_, v) = op.f
            && v != init
            && producers.get(&v) == Some(&1)
            && let Some(&ret) = first_seen.get(&v)
            && ret > op.call
        {
            op.ret = ret;
            op.optional = false;
        }
    }
}

/// The trie model, when the key allows it: no cas, every put/append value a non-empty
/// string different from the initial value, every read a string that splits in at most
/// one way (or null, while the key is still absent). (A value may be put and appended,
/// and repeat: a read that could be read two ways is what forbids the trie, since a node
/// must stand for one string.) `None` otherwise (the general string model is used).
///
/// An absent initial value is the root of the first epoch like `""` is, since appends
/// extend both alike; only reads tell them apart: null reads the absent root, `""`
/// cannot be read from it.
fn prepare_trie(kept: &[&Operation], initial: &Value) -> Option<Prepared> {
    let (init_s, absent) = match initial {
        Value::String(s) => (s.as_str(), false),
        Value::Null => ("", true),
        _ => return None,
    };
    let mut model = TrieModel::new();
    let mut puts: FxHashMap<&str, u32> = FxHashMap::default(); // value -> epoch root
    let mut appends: FxHashMap<&str, u32> = FxHashMap::default(); // value -> token
    let mut lens: Vec<usize> = Vec::new();
    let mut copies: FxHashMap<&str, usize> = FxHashMap::default();
    for o in kept {
        match (&o.f, &o.input) {
            (Function::Read, _) => {}
            (Function::Write, Value::String(s)) if !s.is_empty() && s != init_s => {
                *copies.entry(s).or_default() += 1;
                if !puts.contains_key(s.as_str()) {
                    puts.insert(s, model.new_root());
                }
            }
            (Function::Append, Value::String(s)) if !s.is_empty() && s != init_s => {
                *copies.entry(s).or_default() += 1;
                if !appends.contains_key(s.as_str()) {
                    appends.insert(s, appends.len() as u32);
                }
                if !lens.contains(&s.len()) {
                    lens.push(s.len());
                }
            }
            _ => return None,
        }
    }
    // Split each read; remember which ops each read proves happened.
    let mut ops = Vec::with_capacity(kept.len());
    let mut seen_by: FxHashMap<&str, u64> = FxHashMap::default();
    for o in kept {
        let f = match o.f {
            Function::Read => {
                let text = match &o.output {
                    Value::Null if absent => {
                        ops.push(base_op(o, F::Read(model.init())));
                        continue;
                    }
                    Value::Null => {
                        ops.push(base_op(o, F::Read(IMPOSSIBLE)));
                        continue;
                    }
                    Value::String(s) if s.is_empty() && absent => {
                        ops.push(base_op(o, F::Read(IMPOSSIBLE)));
                        continue;
                    }
                    Value::String(s) => s,
                    _ => return None,
                };
                match split(text, (model.init(), init_s), &puts, &appends, &lens)? {
                    Some((root, epoch, tokens)) => {
                        let mut bound = |s: &str| {
                            if let Some((k, _)) = puts.get_key_value(s) {
                                let e = seen_by.entry(k).or_insert(NEVER);
                                *e = (*e).min(completion(o));
                            }
                            if let Some((k, _)) = appends.get_key_value(s) {
                                let e = seen_by.entry(k).or_insert(NEVER);
                                *e = (*e).min(completion(o));
                            }
                        };
                        if let Some(p) = epoch {
                            bound(p);
                        }
                        for t in &tokens {
                            bound(t);
                        }
                        let ids: Vec<u32> = tokens.iter().map(|t| appends[t]).collect();
                        F::Read(model.insert(root, &ids))
                    }
                    None => F::Read(IMPOSSIBLE),
                }
            }
            Function::Write => F::Write(*puts.get(o.input.as_str()?)?),
            Function::Append => F::Append(*appends.get(o.input.as_str()?)?),
            _ => return None,
        };
        ops.push(base_op(o, f));
    }
    for (op, o) in ops.iter_mut().zip(kept) {
        if op.optional
            && let Some(s) = o.input.as_str()
            && copies.get(s) == Some(&1)
            && let Some(&ret) = seen_by.get(s)
            && ret > op.call
        {
            op.ret = ret;
            op.optional = false;
        }
    }
    if init_s.is_empty() {
        for (v, &root) in &puts {
            if let Some(&t) = appends.get(v) {
                // See `split`: appending V to "" (or to absent) gives the state put V
                // gives.
                if !model.link(model.init(), t, root) {
                    return None;
                }
            }
        }
    }
    model.count_waiting(&ops);
    Some(Prepared::Trie(model, ops))
}

type Split<'a> = Option<(u32, Option<&'a str>, Vec<&'a str>)>;

/// Splits a read into (epoch root, the put that started it, appends). `Some(None)` if no
/// split exists, `None` if more than one does (the trie model does not apply).
fn split<'a>(
    text: &str,
    (init_root, init): (u32, &str),
    puts: &FxHashMap<&'a str, u32>,
    appends: &FxHashMap<&'a str, u32>,
    lens: &[usize],
) -> Option<Split<'a>> {
    let mut found: Split<'a> = None;
    let mut starts: Vec<(u32, Option<&'a str>, usize)> = Vec::new();
    if text.starts_with(init) {
        starts.push((init_root, None, init.len()));
    }
    // Puts are matched by trying every prefix length; few distinct lengths in practice.
    let mut put_lens: Vec<usize> = puts.keys().map(|k| k.len()).collect();
    put_lens.sort_unstable();
    put_lens.dedup();
    for l in put_lens {
        if let Some(pre) = text.get(..l)
            && let Some((k, &root)) = puts.get_key_value(pre)
        {
            starts.push((root, Some(*k), l));
        }
    }
    for (root, epoch, from) in starts {
        for tokens in parse_appends(&text[from..], appends, lens)? {
            match &found {
                None => found = Some((root, epoch, tokens)),
                // With an empty initial value, "append V, then R" and "put V, then R" are
                // the same string: the model links the initial root's V edge to V's
                // root, so both are one node (the put's).
                Some((r0, None, t0))
                    if init.is_empty()
                        && *r0 == init_root
                        && epoch.is_some_and(|p| t0.first() == Some(&p))
                        && t0[1..] == tokens[..] =>
                {
                    found = Some((root, epoch, tokens));
                }
                Some(_) => return None,
            }
        }
    }
    Some(found)
}

/// All ways (at most two are kept) to write `text` as a sequence of append values;
/// `None` if there are two or more.
fn parse_appends<'a>(
    text: &str,
    appends: &FxHashMap<&'a str, u32>,
    lens: &[usize],
) -> Option<Vec<Vec<&'a str>>> {
    // ways[i]: number of splits of text[i..] (capped at 2); next[i]: the token of the
    // first split.
    let n = text.len();
    let mut ways = vec![0u8; n + 1];
    let mut next: Vec<Option<&'a str>> = vec![None; n + 1];
    ways[n] = 1;
    for i in (0..n).rev() {
        for &l in lens {
            if let Some(piece) = text.get(i..i + l)
                && let Some((k, _)) = appends.get_key_value(piece)
                && ways[i + l] > 0
            {
                ways[i] = (ways[i] + ways[i + l]).min(2);
                next[i] = Some(*k);
            }
        }
    }
    match ways[0] {
        0 => Some(Vec::new()),
        1 => {
            let mut out = Vec::new();
            let mut i = 0;
            while i < n {
                let t = next[i]?;
                out.push(t);
                i += t.len();
            }
            Some(vec![out])
        }
        _ => None,
    }
}
