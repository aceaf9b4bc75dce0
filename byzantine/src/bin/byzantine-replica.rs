//! `byzantine-replica`: the honest node (`replica::node`) with a Byzantine behaviour as its
//! interceptor. Flags are those of `replica run`, plus `--behaviour`, `--param` and `--seed`.

use byzantine::BehaviourArgs;
use clap::Parser;
use replica::node::cli::{EXIT_CONFIG, RunArgs, init_logging, load_options, run_to_exit};
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
    /// `--behaviour`, `--param` and `--seed`, as the harness's launcher writes them.
    #[command(flatten)]
    behaviour: Option<BehaviourArgs>,
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
    let Some(args) = cli.behaviour else {
        eprintln!("error: --behaviour is required (see --list)");
        return ExitCode::from(EXIT_CONFIG);
    };
    let behaviour = match args.parsed() {
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
        behaviour = %behaviour.name(),
        params = ?behaviour.params(),
        seed = args.seed,
        "running a BYZANTINE replica"
    );
    run_to_exit(
        options,
        byzantine::build(&behaviour, args.seed),
        run.exit_with_stdin,
    )
}
