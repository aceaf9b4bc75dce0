//! `byzantine-replica`: the honest node (`replica::node`) with a Byzantine behaviour as its
//! interceptor. Flags are those of `replica run`, plus `--behaviour`, `--param` and `--seed`.

use clap::Parser;
use replica::node::cli::{EXIT_CONFIG, RunArgs, init_logging, load_options, run_to_exit};
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "byzantine-replica",
    version,
    about = "A PBFT replica of the Gauntlet KV service that misbehaves on purpose"
)]
struct Cli {
    /// Print the catalogue of behaviours and exit.
    #[arg(long, exclusive = true)]
    list: bool,
    /// The same flags as `replica run`.
    #[command(flatten)]
    run: Option<RunArgs>,
    /// One of `--list`.
    #[arg(long, required_unless_present = "list")]
    behaviour: Option<String>,
    /// A behaviour parameter, `key=value`; repeatable.
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Drives every random choice of the behaviour.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("`{text}` is not key=value")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for info in byzantine::catalogue() {
            let params = if info.params.is_empty() {
                String::new()
            } else {
                format!(" [{}]", info.params)
            };
            println!("{:<16} {}{params}", info.name, info.summary);
        }
        return ExitCode::SUCCESS;
    }
    init_logging();
    let Some(run) = cli.run else {
        eprintln!("error: --config and --id are required");
        return ExitCode::from(EXIT_CONFIG);
    };
    let behaviour_name = cli.behaviour.clone().unwrap_or_default();
    let params: BTreeMap<String, String> = cli.params.iter().cloned().collect();
    let behaviour = match byzantine::build(&behaviour_name, &params, cli.seed) {
        Ok(behaviour) => behaviour,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = match load_options(&run) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    tracing::warn!(
        replica = %options.id,
        behaviour = %behaviour_name,
        ?params,
        seed = cli.seed,
        "running a BYZANTINE replica"
    );
    run_to_exit(options, behaviour, run.exit_with_stdin)
}
