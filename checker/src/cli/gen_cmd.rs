//! `checker gen`: writes a generated history as JSONL, so the large-history figures can
//! be reproduced with the same two commands a user would type (`gen`, then `check`).

use super::GenArgs;
use anyhow::{Context, bail};
use checker::r#gen::{GenOptions, Mix, generate};
use checker::parse::Format;
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
    history
        .save(&args.output, Format::Jsonl)
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!(
        "checker gen: {} ops, {} events over {} keys from {} clients -> {}",
        history.ops.len(),
        history.events.len(),
        args.keys,
        args.clients,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
