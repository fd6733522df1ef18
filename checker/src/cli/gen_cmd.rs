//! `checker gen`: writes a generated history as JSONL, so the large-history figures can
//! be reproduced with the same two commands a user would type (`gen`, then `check`).

use super::GenArgs;
use anyhow::{Context, bail};
use checker::r#gen::{GenOptions, Mix, generate};
use checker::history::{Function, Operation, Outcome};
use serde_json::{Map, Value, json};
use std::io::{BufWriter, Write};
use std::process::ExitCode;

pub fn run(args: &GenArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.info) {
        bail!("--info must be a share between 0 and 1, not {}", args.info);
    }
    let options = GenOptions {
        seed: args.seed,
        ops: args.ops,
        keys: args.keys,
        clients: args.clients,
        mix: match args.mix.as_str() {
            "register" => Mix::Register,
            "cas" => Mix::Cas,
            "append" => Mix::Append,
            other => bail!("--mix must be register, cas or append, not {other:?}"),
        },
        info_rate: args.info,
        inject_violation: args.violation,
        ..GenOptions::default()
    };
    let history = generate(&options);
    // Each op gives an invoke and (unless it never returned) a completion, sorted by time.
    // At one instant completions come first: a client's next op may start the very
    // nanosecond its previous one returned, and the file must show one op at a time.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(history.ops.len() * 2);
    for (i, op) in history.ops.iter().enumerate() {
        events.push((op.call, 1, i));
        if let Some(ret) = op.ret {
            events.push((ret, 0, i));
        }
    }
    events.sort_unstable();
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    for (index, &(time, invoke, i)) in events.iter().enumerate() {
        let line = event_json(index as u64, time, invoke == 0, &history.ops[i]);
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "checker gen: {} ops, {} events over {} keys from {} clients -> {}",
        history.ops.len(),
        events.len(),
        args.keys,
        args.clients,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn event_json(index: u64, time: u64, completion: bool, op: &Operation) -> Value {
    let f = match op.f {
        Function::Read => "read",
        Function::Write => "write",
        Function::Cas => "cas",
        Function::Append => "append",
    };
    let kind = match (completion, op.outcome) {
        (false, _) => "invoke",
        (true, Outcome::Ok) => "ok",
        (true, Outcome::Fail) => "fail",
        (true, Outcome::Info) => "info",
    };
    let value = match (completion, op.f, op.outcome) {
        (false, Function::Read, _) => Value::Null,
        (true, Function::Read, Outcome::Ok) => op.output.clone(),
        (true, Function::Read, _) => Value::Null,
        _ => op.input.clone(),
    };
    let mut m = Map::new();
    m.insert("index".into(), json!(index));
    m.insert("time".into(), json!(time));
    m.insert("process".into(), json!(op.process));
    m.insert("type".into(), json!(kind));
    m.insert("f".into(), json!(f));
    if let Some(key) = &op.key {
        m.insert("key".into(), json!(key));
    }
    m.insert("value".into(), value);
    if completion && op.outcome == Outcome::Fail && op.f == Function::Cas {
        m.insert("error".into(), json!("cas_mismatch"));
    }
    Value::Object(m)
}
