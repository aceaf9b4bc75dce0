//! `replica testnet` writes a local cluster; `replica run` runs one replica of it.

use clap::{Args, Parser, Subcommand};
use replica::node::Honest;
use replica::node::cli::{EXIT_CONFIG, RunArgs, init_logging, load_options, run_to_exit};
use replica::node::testnet::{TestnetSpec, write_testnet};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "replica",
    version,
    about = "A PBFT replica of the Gauntlet KV service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/cluster.yaml and secret keys for a local testnet of 3f+1 replicas.
    Testnet(TestnetArgs),
    /// Run one replica of a cluster.
    Run(RunArgs),
}

#[derive(Args)]
struct TestnetArgs {
    /// Faults tolerated; the testnet has 3f+1 replicas.
    #[arg(long)]
    f: usize,
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 4)]
    clients: u32,
    /// Replica i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Derive keys from this seed (reproducible) instead of the OS random source.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not fsync the write-ahead log (fast tests only: a crash may lose promises).
    #[arg(long)]
    no_fsync: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Testnet(args) => testnet(args),
        Command::Run(args) => run(args),
    }
}

fn testnet(args: TestnetArgs) -> ExitCode {
    let spec = TestnetSpec {
        f: args.f,
        clients: args.clients,
        base_port: args.base_port,
        seed: args.seed,
        fsync: !args.no_fsync,
    };
    match write_testnet(&args.dir, &spec) {
        Ok(config) => {
            println!(
                "wrote {} ({} replicas, {} clients)",
                args.dir.join("cluster.yaml").display(),
                config.replicas.len(),
                config.clients.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    match load_options(&args) {
        Ok(options) => run_to_exit(options, Box::new(Honest), args.exit_with_stdin),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
